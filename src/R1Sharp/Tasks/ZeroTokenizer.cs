using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Text;

namespace R1Sharp.Tasks;

/// <summary>
/// Writes the tiny tokenizer of the CPU demo in Hugging Face's format (tokenizer.json + tokenizer_config.json), so the
/// demo model is an ordinary HF folder. Byte-level BPE over the 256 byte symbols, with no pre-tokenizer split (so
/// merges may span spaces) and a few merges that spell the template's words; added tokens for the R1-Zero tags, the
/// template's preamble (one token instead of ~400: a sequence's cost on two cores is mostly its length) and the EOS.
/// </summary>
public static class ZeroTokenizer
{
    public const string Eos = "<|endoftext|>";
    public static readonly string[] Tags = ["<think>", "</think>", "<answer>", "</answer>"];
    static readonly string[] MergedWords = [" User:", " Assistant:"];

    public static void Write(string dir)
    {
        Directory.CreateDirectory(dir);
        var vocab = new JsonObject();
        int id = 0;
        foreach (char c in ByteLevel.ByteToChar) vocab[c.ToString()] = id++;
        var merges = new JsonArray();
        foreach (var word in MergedWords)
        {
            // Left-to-right chain: "Ġ"+"U" → "ĠU", "ĠU"+"s" → "ĠUs", … so the whole word becomes one token.
            string spelled = ByteLevel.Encode(word), left = spelled[..1];
            for (int i = 1; i < spelled.Length; i++)
            {
                string right = spelled[i].ToString();
                merges.Add(new JsonArray(left, right));
                left += right;
                if (!vocab.ContainsKey(left)) vocab[left] = id++;
            }
        }
        var added = new JsonArray();
        void Add(string content, bool special)
        {
            added.Add(new JsonObject
            {
                ["id"] = id++, ["content"] = content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = special,
            });
        }
        Add(Eos, true);
        foreach (var t in Tags) Add(t, false);
        Add(R1ZeroTemplate.Preamble, false);
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = vocab, ["merges"] = merges,
            },
        };
        var config = new JsonObject
        {
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
            ["bos_token"] = null,
            ["eos_token"] = Eos,
            ["pad_token"] = Eos,
            ["model_max_length"] = 512,
            ["chat_template"] = R1ZeroTemplate.Jinja,
        };
        var opts = new JsonSerializerOptions { WriteIndented = true };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString(opts) + "\n");
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString(opts) + "\n");
        File.WriteAllText(Path.Combine(dir, "special_tokens_map.json"), new JsonObject { ["eos_token"] = Eos, ["pad_token"] = Eos }.ToJsonString(opts) + "\n");
    }
}
