"""The local LLM, run in a child process: `python llm_child.py` reads a JSON job on stdin, writes the model's
text as JSON on stdout. llama.cpp can die in native code (an "Illegal instruction" from kernels built for
another CPU, a segfault on a malformed model): here that ends this child, never the engine.

Run by file path, not `-m`, so the child imports only the standard library and llama_cpp.

stdin:  {"model": path, "prompt": str, "schema": JSON schema, "time_limit": s, "max_tokens": n, "seed": n}
stdout: {"text": str} | {"error": str, "timeout": bool} | {"error": str, "missing": true}
"""
from __future__ import annotations

import json
import sys
import time


def load_llm(path: str, seed: int = 0):
    from llama_cpp import Llama

    return Llama(model_path=path, n_ctx=2048, n_threads=2, seed=seed, verbose=False)


def generate(llm, prompt: str, schema: dict, time_limit: float, max_tokens: int) -> str:
    from llama_cpp import LlamaGrammar, StoppingCriteriaList

    deadline = time.monotonic() + time_limit

    def past_deadline(tokens, logits) -> bool:
        return time.monotonic() > deadline

    grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    out = llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.2, grammar=grammar,
                                stopping_criteria=StoppingCriteriaList([past_deadline]))
    if time.monotonic() > deadline:
        raise TimeoutError(f"the model ran past its {time_limit:g} s limit")
    return out["choices"][0]["text"]


def main() -> int:
    job = json.load(sys.stdin)
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        answer = {"error": "llama-cpp-python is not installed", "missing": True}
        sys.stdout.write(json.dumps(answer))
        return 0
    try:
        llm = load_llm(job["model"], job.get("seed", 0))
        text = generate(llm, job["prompt"], job["schema"], job["time_limit"], job["max_tokens"])
    except TimeoutError as error:
        answer = {"error": str(error), "timeout": True}
    except Exception as error:  # llama.cpp raises ValueError/RuntimeError for bad files and more
        answer = {"error": f"{type(error).__name__}: {error}", "timeout": False}
    else:
        answer = {"text": text}
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
