using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;
using R1Sharp.Text;

namespace R1Sharp.Bench;

/// <summary>
/// Encoding time per character against the length of the input, for runs without a space (letters, digits, CJK,
/// emoji: one pre-token, or for digits one per digit group) and for spaced words, 10k to 1M characters. The byte-pair
/// merge is heap-ordered for ordinary words and rank by rank for very long ones (beside it: the heap for every word),
/// so time per character should stay flat across lengths, and
/// a run should cost about what spaced words of the same length cost. Beside it, in the same run, the merge loop
/// R1Sharp used before (Microsoft.ML.Tokenizers' BpeTokenizer on the same pre-tokens and byte-level spelling),
/// measured while a single encode stays under a few seconds; the ids of both are compared wherever both ran.
/// </summary>
public static class TokenizerBench
{
    static readonly int[] Lengths = [10_000, 30_000, 100_000, 300_000, 1_000_000];

    public static int Run(string[] args)
    {
        string dir = Arg(args, "--tokenizer") ?? Path.Combine(SharedDir(), "tokenizers", "qwen3");
        var lengths = Arg(args, "--lengths") is { } l ? l.Split(',').Select(int.Parse).ToArray() : Lengths;
        var tok = HfTokenizer.FromFolder(dir);
        // The same tokenizer with every word merged through the heap, to show what the rank-by-rank merge of long
        // words changes (both give the same ids).
        var heapOnly = HfTokenizer.FromFolder(dir);
        heapOnly.Model.RankOrderThreshold = int.MaxValue;
        var json = TokenizerJson.Load(Path.Combine(dir, "tokenizer.json"));
        var reference = BpeTokenizer.Create(new BpeOptions(json.Vocab)
        {
            Merges = json.Merges.Select(m => m.Left + " " + m.Right), PreTokenizer = null, Normalizer = null,
        });

        var rng = new Random(1);
        string letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        string cjk = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长";
        string[] emoji = [.. "😀😃😄😁😆😅😂🤣😊😇🙂🙃😉😌😍🥰😘😗😙😚😋😛😝😜🤪🤨🧐🤓😎🥸🤩🥳👍👎👏🙌🚀🌍🔥💧🎉🧮".EnumerateRunes().Select(r => r.ToString())];
        var shapes = new (string Name, Func<int, string> Make)[]
        {
            ("letters", n => Pick(rng, n, i => letters[i % letters.Length].ToString(), letters.Length)),
            ("digits", n => Pick(rng, n, i => ((char)('0' + i)).ToString(), 10)),
            ("cjk", n => Pick(rng, n, i => cjk[i].ToString(), cjk.Length)),
            ("emoji", n => Pick(rng, n, i => emoji[i], emoji.Length)),
            ("spaced words", n => Words(rng, n)),
        };

        // Warm-up until the JIT's optimized tier is in: a long run calls the merge only a few times.
        var warm = Stopwatch.StartNew();
        while (warm.Elapsed < TimeSpan.FromSeconds(3))
            foreach (var (_, make) in shapes)
            {
                string w = make(3000), longer = make(20_000);
                tok.Encode(w); tok.Encode(longer); heapOnly.Encode(longer); ReferenceEncode(json.PreTokenizer, reference, w);
            }

        Console.WriteLine($"tokenizer {dir}; time per character (code point), best of up to 3 encodes; reference: the previous merge loop (Microsoft.ML.Tokenizers BPE)");
        Console.WriteLine($"words of {tok.Model.RankOrderThreshold:N0}+ byte symbols merge rank by rank; \"heap\" merges every word through the heap");
        Console.WriteLine($"{"shape",-13} {"chars",9} {"ids",9} {"ns/char",9} {"heap",7} {"heap÷new",9} {"ref ns/char",12} {"ref÷new",8}  ids equal");
        var rows = new List<Row>();
        var flat = new Dictionary<string, double>();
        bool allEqual = true;
        foreach (var (name, make) in shapes)
        {
            double lo = double.MaxValue, hi = 0;
            bool referenceTooSlow = false;
            foreach (int n in lengths)
            {
                string text = make(n);
                var ids = tok.Encode(text); // warm-up and the ids to compare
                double ns = Best(() => tok.Encode(text), n);
                double heapNs = Best(() => heapOnly.Encode(text), n);
                bool heapEqual = heapOnly.Encode(text).SequenceEqual(ids);
                allEqual &= heapEqual;
                lo = Math.Min(lo, ns); hi = Math.Max(hi, ns);
                double? refNs = null;
                bool? equal = null;
                if (!referenceTooSlow)
                {
                    var sw = Stopwatch.StartNew();
                    var refIds = ReferenceEncode(json.PreTokenizer, reference, text);
                    refNs = sw.Elapsed.TotalNanoseconds / n;
                    equal = refIds.SequenceEqual(ids);
                    allEqual &= equal.Value;
                    // The old loop grows quadratically: past a few seconds a longer run would take minutes.
                    referenceTooSlow = sw.Elapsed > TimeSpan.FromSeconds(3);
                }
                Console.WriteLine($"{name,-13} {n,9:N0} {ids.Count,9:N0} {ns,9:F0} {heapNs,7:F0} {heapNs / ns,9:F2} {(refNs is { } r ? r.ToString("F0") : "-"),12} {(refNs is { } r2 ? (r2 / ns).ToString("F1") : "-"),8}  {(equal is { } e ? (e ? "yes" : "NO") : "-")}{(heapEqual ? "" : " (heap: NO)")}");
                rows.Add(new Row(name, n, ids.Count, ns, heapNs, refNs, equal, heapEqual));
            }
            flat[name] = hi / lo;
        }
        double spaced = rows.Where(r => r.Shape == "spaced words").Max(r => r.NsPerChar);
        foreach (var (name, spread) in flat)
        {
            if (name == "spaced words") { Console.WriteLine($"{name,-13} ns/char spread across lengths {spread:F2}× (word cache warm: most words repeat)"); continue; }
            double worst = rows.Where(r => r.Shape == name).Max(r => r.NsPerChar);
            Console.WriteLine($"{name,-13} ns/char spread across lengths {spread:F2}× (target ≤ 2); worst {worst:F0} ns/char = {worst / spaced:F2}× spaced words' worst");
        }
        Directory.CreateDirectory("bench/results");
        File.WriteAllText($"bench/results/tokenizer-{Path.GetFileName(dir.TrimEnd('/'))}.json",
            JsonSerializer.Serialize(new { bench = "tokenizer", tokenizer = dir, rows, spread = flat },
                new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
        return allEqual && flat.Where(f => f.Key != "spaced words").All(f => f.Value <= 2) ? 0 : 1;
    }

    sealed record Row(string Shape, int Chars, int Ids, double NsPerChar, double HeapNsPerChar, double? ReferenceNsPerChar, bool? IdsEqual, bool HeapIdsEqual);

    /// <summary>Nanoseconds per character, the best of up to three encodes (fewer when one takes over a second).</summary>
    static double Best(Action encode, int chars)
    {
        double best = double.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            var sw = Stopwatch.StartNew();
            encode();
            best = Math.Min(best, sw.Elapsed.TotalNanoseconds / chars);
            if (sw.Elapsed > TimeSpan.FromSeconds(1)) break;
        }
        return best;
    }

    /// <summary>The previous pipeline: our pre-tokenizer and byte-level spelling, Microsoft.ML.Tokenizers' merge loop.
    /// The texts carry no added tokens and the Qwen3 / DeepSeek-V3 normalizers leave them unchanged.</summary>
    static List<int> ReferenceEncode(HfPreTokenizer pre, BpeTokenizer bpe, string text)
    {
        var pieces = new List<Piece>();
        pre.Split(text, pieces);
        var ids = new List<int>();
        foreach (var p in pieces) ids.AddRange(bpe.EncodeToIds(ByteLevel.Encode(p.Span), considerPreTokenization: false, considerNormalization: false));
        return ids;
    }

    static string Pick(Random rng, int n, Func<int, string> symbol, int count)
    {
        var sb = new StringBuilder(n * 2);
        for (int i = 0; i < n; i++) sb.Append(symbol(rng.Next(count)));
        return sb.ToString();
    }

    static string Words(Random rng, int n)
    {
        var sb = new StringBuilder(n + 16);
        while (sb.Length < n)
        {
            if (sb.Length > 0) sb.Append(' ');
            int len = rng.Next(2, 9);
            for (int i = 0; i < len; i++) sb.Append((char)('a' + rng.Next(26)));
        }
        return sb.ToString(0, n);
    }

    static string? Arg(string[] args, string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }

    static string SharedDir()
    {
        string? env = Environment.GetEnvironmentVariable("R1SHARP_SHARED");
        if (!string.IsNullOrEmpty(env)) return env;
        for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "shared", "GUIDE.md"))) return Path.Combine(d.FullName, "shared");
        throw new DirectoryNotFoundException("could not find ../shared (set R1SHARP_SHARED or pass --tokenizer DIR)");
    }
}
