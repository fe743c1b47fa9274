"""Writes expected.json: chat templates rendered by Python jinja2 exactly as Hugging Face transformers
configures it (transformers.utils.chat_template_utils._compile_jinja_template and apply_chat_template),
so the C# renderer can be checked byte for byte against an independent reference.

Run from this folder: python3 make_fixtures.py   (needs jinja2 >= 3.1; tested with 3.1.6 on Python 3.11)
"""
import json
import os
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("R1SHARP_SHARED") or os.path.normpath(os.path.join(HERE, "../../../../../../shared"))
if not os.path.isdir(SHARED):
    SHARED = "/work/shared"


# --- transformers' environment (same options, filters and globals) ---
def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def compile_template(source):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


def token_text(tok):
    return tok["content"] if isinstance(tok, dict) else tok


def load_shared(name):
    cfg = json.load(open(os.path.join(SHARED, "tokenizers", name, "tokenizer_config.json"), encoding="utf-8"))
    return cfg["chat_template"], token_text(cfg.get("bos_token")), token_text(cfg.get("eos_token"))


# --- templates: (id, where the text comes from, bos, eos) ---
TEMPLATES = []
for name in ["deepseek_v3", "qwen3"]:
    src, bos, eos = load_shared(name)
    TEMPLATES.append(dict(id=name, source="shared:" + name, text=src, bos_token=bos, eos_token=eos))
DS_BOS, DS_EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
for tid, file, bos, eos in [
    ("deepseek_r1", "deepseek_r1.jinja", DS_BOS, DS_EOS),
    ("deepseek_r1_distill", "deepseek_r1_distill.jinja", DS_BOS, DS_EOS),
    ("qwen2_5_instruct", "qwen2_5_instruct.jinja", "<|endoftext|>", "<|im_end|>"),
    ("llama3_3_instruct", "llama3_3_instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"),
    # Beyond the R1 family, to exercise more of Jinja (recursive macros, |items, loop.previtem/nextitem, newlines in literals):
    ("hermes3_tool_use", "hermes3_tool_use.jinja", "<|begin_of_text|>", "<|im_end|>"),
    ("qwq_32b", "qwq_32b.jinja", None, "<|im_end|>"),
]:
    text = open(os.path.join(HERE, file), encoding="utf-8", newline="").read()
    TEMPLATES.append(dict(id=tid, source=file, text=text, bos_token=bos, eos_token=eos))


# --- conversations ---
def m(role, content, reasoning=None):
    d = {"role": role, "content": content}
    if reasoning is not None:
        d["reasoning_content"] = reasoning
    return d


CONVERSATIONS = {
    "user_only": [m("user", "What is 2+3?")],
    "system_user": [m("system", "You are a careful math tutor."), m("user", "Solve x^2 = 4.")],
    "multi_turn_think": [
        m("system", "Answer briefly."),
        m("user", "What is 7*6?"),
        m("assistant", "<think>\n7*6 = 42, easy.\n</think>\n\nThe answer is 42."),
        m("user", "And 7*7?"),
    ],
    "reasoning_content": [
        m("user", "Is 91 prime?"),
        m("assistant", "No: 91 = 7 × 13.", reasoning="Try small primes: 91/7 = 13."),
        m("user", "Is 97 prime?"),
    ],
    "assistant_last": [
        m("user", "Say hi."),
        m("assistant", "<think>\nThe user wants a greeting.\n</think>\n\nHi!"),
    ],
    "reasoning_last": [
        m("user", "Think, then say ok."),
        m("assistant", "ok", reasoning="\nI should say ok.\n"),
    ],
    "unicode_braces": [
        m("system", "  Système: réponds en français 🙂  "),
        m("user", "Ensemble {x | x > 0} et {{ pas_une_balise }} {% raw %} — 数学 ∑ 😀\n\tfin  "),
        m("assistant", "D'accord: {\"a\": [1, 2]} \\n ok"),
        m("user", "Merci ! 🎉"),
    ],
    "two_systems": [
        m("system", "First rule."),
        m("system", "Second rule."),
        m("user", "Go."),
    ],
    "empty_content": [m("system", ""), m("user", "")],
}

# Seeded random conversations from awkward pieces: whitespace at the edges, several </think>, CRLF, braces,
# template-like text, astral characters, empty strings.
PIECES = ["", " ", "\n", "\r\n", "\t", "  lead", "trail  ", "<think>", "</think>", "<think>\nr\n</think>\n\n",
          "{{ x }}", "{% if %}", "{#", "#}", "}}", "é", "数学", "😀", "𝔸", "\\", "'", '"', "\u00a0", "a\u2028b", "<|im_end|>", "<｜User｜>"]


def random_conversations(seed=1234, count=6):
    import random
    rng = random.Random(seed)
    text = lambda: "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 6)))
    convs = {}
    for i in range(count):
        msgs = [m("system", text())] if rng.random() < 0.5 else []
        for turn in range(rng.randint(1, 3)):
            msgs.append(m("user", text() or "q"))
            if rng.random() < 0.8:
                msgs.append(m("assistant", text(), reasoning=text() if rng.random() < 0.3 else None))
        convs[f"random{i}"] = msgs
    return convs


TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Météo d'une ville",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]},
    },
}]

# Parameter types a Hermes-style template turns into Python type names (unions, arrays, dicts, return types).
TOOLS_RICH = [{
    "type": "function",
    "function": {
        "name": "search",
        "description": "  Search the web  ",
        "parameters": {"type": "object", "properties": {
            "query": {"type": "string", "description": " the query "},
            "limit": {"type": ["integer", "number"], "description": "max hits"},
            "tags": {"type": "object", "additionalProperties": {"type": "number"}, "description": "weights"},
            "flag": {"type": "boolean", "description": "strict"},
        }, "required": ["query"]},
        "return": {"type": "object", "description": "hits"},
    },
}]

EXTRAS = {
    "llama3_3_instruct": [("date", {"date_string": "28 Nov 2026"}), ("tools", {"date_string": "28 Nov 2026", "tools": TOOLS})],
    "qwen3": [("no_thinking", {"enable_thinking": False}), ("tools", {"tools": TOOLS})],
    "qwen2_5_instruct": [("tools", {"tools": TOOLS})],
    "hermes3_tool_use": [("tools", {"tools": TOOLS + TOOLS_RICH})],
    "qwq_32b": [("tools", {"tools": TOOLS})],
}


def render(tpl, messages, add_generation_prompt, extra):
    # transformers passes tools and documents explicitly (None when absent) and the special tokens it knows.
    kwargs = dict(messages=messages, tools=None, documents=None, add_generation_prompt=add_generation_prompt)
    if tpl["bos_token"] is not None:
        kwargs["bos_token"] = tpl["bos_token"]
    if tpl["eos_token"] is not None:
        kwargs["eos_token"] = tpl["eos_token"]
    kwargs.update(extra)
    try:
        return {"expected": compile_template(tpl["text"]).render(**kwargs)}
    except Exception as e:  # the C# side must refuse too; raise_exception's text must match
        return {"error": f"{type(e).__name__}: {e}"}


def render_snippets():
    # Each small template exercises one feature; transformers' environment renders it with CTX.
    from jinja_snippets import CTX, SNIPPETS
    cases = []
    for name, source in SNIPPETS:
        case = dict(name=name, template=source)
        try:
            case["expected"] = compile_template(source).render(**CTX)
        except Exception as e:  # the C# side must refuse too (R1SharpException)
            case["error"] = f"{type(e).__name__}: {e}"
        cases.append(case)
    with open(os.path.join(HERE, "jinja_cases.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(dict(generator=f"make_fixtures.py, jinja2 {jinja2.__version__}", context=CTX, cases=cases), f, ensure_ascii=False, indent=1)
        f.write("\n")


def main():
    render_snippets()
    out = {"generator": f"make_fixtures.py, jinja2 {jinja2.__version__}", "templates": []}
    for tpl in TEMPLATES:
        cases = []
        variants = [("", {})] + EXTRAS.get(tpl["id"], [])
        for conv_name, messages in {**CONVERSATIONS, **random_conversations()}.items():
            for suffix, extra in variants:
                for agp in (True, False):
                    name = f"{conv_name}{'+' + suffix if suffix else ''}{'+gen' if agp else ''}"
                    case = dict(name=name, messages=messages, add_generation_prompt=agp, extra=extra)
                    case.update(render(tpl, messages, agp, extra))
                    cases.append(case)
        if tpl["id"] == "llama3_3_instruct":  # raise_exception path: tools but no user message to put them in
            case = dict(name="tools_without_user", messages=[m("system", "sys")], add_generation_prompt=True, extra={"tools": TOOLS})
            case.update(render(tpl, case["messages"], True, case["extra"]))
            cases.append(case)
        out["templates"].append(dict(id=tpl["id"], source=tpl["source"], bos_token=tpl["bos_token"], eos_token=tpl["eos_token"], cases=cases))
    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(sum(len(t["cases"]) for t in out["templates"]), "cases")


if __name__ == "__main__":
    main()
