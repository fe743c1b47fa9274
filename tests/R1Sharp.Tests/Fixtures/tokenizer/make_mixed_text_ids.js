// Generates mixed_text_ids.json: long mixed texts and their ids under the Qwen3 and DeepSeek-V3 tokenizers,
// computed by @lenml/tokenizers (an independent JavaScript port of transformers.js tokenizers), so that
// R1Sharp's HfTokenizer is checked against another implementation on more than the 25 short reference strings.
//
// Usage (install the reference outside the repository; never vendor it):
//   mkdir /tmp/tokref && cd /tmp/tokref && npm init -y && npm install @lenml/tokenizers@3.7.2
//   NODE_PATH=/tmp/tokref/node_modules node make_mixed_text_ids.js /work/shared/tokenizers > mixed_text_ids.json
const fs = require("fs");
const path = require("path");
const { TokenizerLoader } = require("@lenml/tokenizers");

const shared = process.argv[2];
const load = (name) => TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync(path.join(shared, name, "tokenizer.json"), "utf8")),
  tokenizerConfig: JSON.parse(fs.readFileSync(path.join(shared, name, "tokenizer_config.json"), "utf8")),
});
const tokenizers = { qwen3: load("qwen3"), deepseek_v3: load("deepseek_v3") };
const reference = JSON.parse(fs.readFileSync(path.join(shared, "reference_ids.json"), "utf8")).cases.map((c) => c.text);

// Fragments that stress the pre-tokenizer: scripts, digits, punctuation runs, whitespace kinds, astral letters, emoji.
const pool = [
  "The derivative of x^2 is 2x, so the slope at x = 3 is 6.",
  "In 1969, Apollo 11 landed on the Moon; 600,000,000 people watched.",
  "Let's check: isn't it true that we'd've known? THEY'LL see.",
  "量子力学是描述微观粒子运动规律的物理学分支。", "深度学习模型需要大量的训练数据，",
  "東京都の人口は約1400万人です。", "カタカナとひらがなを混ぜたテキスト", "한국어 텍스트도 포함합니다.",
  "Съешь же ещё этих мягких французских булок", "Γειά σου Κόσμε", "مرحبا بالعالم", "नमस्ते दुनिया", "สวัสดีชาวโลก",
  "$$\\int_{-\\infty}^{\\infty} e^{-x^2}\\,dx = \\sqrt{\\pi}$$", "\\begin{aligned} a &= b + c \\\\ d &= e \\end{aligned}",
  "\\boxed{\\frac{3}{4}}", "\\left\\lfloor \\frac{n}{2} \\right\\rfloor", "x_{i,j}^{(k)}",
  "def f(x):\n\treturn {'a': [1, 2, 3], \"b\": None}\n", "if (a && b || !c) { x += 1; } // done",
  "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); }", "SELECT * FROM t WHERE id >= 10;",
  "😀😃😄😁", "👩‍💻👨‍👩‍👧", "🏳️‍🌈", "🇯🇵🇫🇷", "✔️✅❌", "🧮🔢", "a😀b", "😀 😀  😀",
  "𝑓(𝑥) = 𝑥²", "𝔸𝔹ℂ", "𝐀𝐁𝐂𝟎𝟏", "𠜎𠜱𠝹𠱓", "𐍈𐌰𐌹", "🀄︎", "\u{1F600}\u{1F3FD}",
  "   ", "\t\t", "\n\n", "\r\n", " \n ", "\u00A0", "\u3000", "\u2028", "\u200B", "  \t \n",
  "3.14159265358979", "1234567890123", "0x1F600", "1e-9", "½ ¾ ⅓", "①②③", "٣٤٥", "१२३",
  "...", "!!!", "???", "---", "***", "___", "«quoted»", "“smart quotes”", "‘single’", "—dash—", "…",
  "café", "naïve", "e\u0301", "A\u030A", "ﬁﬂ", "Ｆｕｌｌ", "ＡＢＣ１２３", "Straße", "İstanbul",
  "<think>", "</think>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<｜User｜>", "<｜Assistant｜>",
  "<｜end▁of▁sentence｜>", "<tool_call>", "<|fim_prefix|>", "<｜tool▁sep｜>", "<|im_start", "im_end|>",
  "http://example.org/a/b?c=d&e=f#g", "user_name@example.co.uk", "C:\\Windows\\System32", "~/.config/app.json",
];
const separators = ["", " ", "  ", "\n", "\t", "\r\n", " \n", "\n\n", "   ", ", "];

// mulberry32: a small seeded generator, so the fixture is reproducible.
function rng(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Boundaries between the regex alternatives and around added tokens, one case each.
const edges = [
  "'S 'LL 'Re 'vE x's y'd z'M", "don''t ''s '", "1234567 12 123 1234 ١٢٣٤ 1.5e10 ¹²³", "a1b2c3 x86_64 H2O",
  "  \n  \n\n   \r\n\t \u3000\u3000a\u00A0\u00A0b", "trailing \n", " leading", "\n\n\n", "   ", "\t",
  "text <|im_end|>  \n<|im_start|>  x", "<think>\n\n</think>\n\n", "<|im_start|><|im_end|><|endoftext|>",
  "a<｜User｜>b <｜Assistant｜> c<｜end▁of▁sentence｜>", "<<|im_end|>>", "<|im_end|", "｜User｜",
  "$$$ ### ((( ))) [[x]] {{y}} ... ,,, ;;; ::::", "--- *** ___ ~~~ ``` '''", "😀!!!", "!!!😀", "中文!!!English", "ａｂｃ！？",
  "e\u0301\u0301 a\u0308 \u1100\u1161\u11A8", "\u0915\u094D\u0937 \u0E01\u0E33", "\uFEFF bom", "\u200D\u200C zw",
  "𝐇𝐞𝐥𝐥𝐨 𝕎𝕠𝕣𝕝𝕕 𝒜𝒷𝒸 𝔄𝔟", "𝟎𝟏𝟐 𝟘𝟙𝟚", "x𠀀y 𠀀123 𠀀!", "🏽🏽🏽", "\u{10FFFD}\u{E0041}",
];
const texts = [reference.join("\n"), reference.join(""), ...edges];
for (let seed = 1; seed <= 12; seed++) {
  const r = rng(seed);
  let s = "";
  while (s.length < 1500) s += pool[Math.floor(r() * pool.length)] + separators[Math.floor(r() * separators.length)];
  texts.push(s);
}
// A few KB of ordinary English prose (exercises the common path and the word cache).
const prose = "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness. ";
texts.push(Array.from({ length: 40 }, (_, i) => prose + `Chapter ${i + 1}.\n`).join(""));

const cases = texts.map((text) => {
  const c = { text };
  for (const [name, tok] of Object.entries(tokenizers)) c[name] = tok.encode(text, { add_special_tokens: false });
  return c;
});
process.stdout.write(JSON.stringify({
  note: "Generated by make_mixed_text_ids.js with @lenml/tokenizers 3.7.2 (add_special_tokens=false) from ../shared/tokenizers.",
  cases,
}) + "\n");
