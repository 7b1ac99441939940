"""Build a tiny, randomly initialised Llama model that a real vLLM server can load, offline.

Run with the python of the vLLM venv (it has ``torch``, ``transformers`` and ``tokenizers``)::

    $VLLM_PYTHON tests/integration/tiny_model.py OUTDIR

The output text is gibberish (random weights); token counts, limits and the HTTP protocol are
real. The build is deterministic (fixed corpus, fixed seed) and skipped when OUTDIR already
holds a complete build of the same recipe.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

# Bump when anything below changes so cached builds are rebuilt.
RECIPE = "tiny-llama r1"
MARKER = "tiny-model.ok"
SEED = 1234
VOCAB_SIZE = 512
MAX_POSITIONS = 256
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)

_WORDS = (
    "the a an of to in and is it that for on with as was at by be this from or are have not "
    "model server health probe endpoint token request response latency queue cache engine "
    "user assistant system hello world please answer question short long fast slow ready "
    "zero one two three four five six seven eight nine ten hundred thousand"
).split()


def _corpus(lines: int = 2000) -> list[str]:
    """A fixed, dependency-free training corpus (a deterministic word shuffle)."""
    out: list[str] = []
    state = SEED
    for _ in range(lines):
        words: list[str] = []
        for _ in range(12):
            state = (state * 1103515245 + 12345) % 2**31
            words.append(_WORDS[state % len(_WORDS)])
        out.append(" ".join(words).capitalize() + ".")
    return out


def is_built(outdir: Path) -> bool:
    marker = outdir / MARKER
    return marker.is_file() and marker.read_text() == RECIPE


def build(outdir: Path) -> None:
    # Heavy imports only here, so `--help` and the skip path stay fast.
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tmp = outdir.with_name(f"{outdir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        model_max_length=MAX_POSITIONS,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(tmp)

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        # vLLM's CPU attention backend only accepts head sizes 32, 64, 80, 96, ...
        head_dim=32,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.save_pretrained(tmp)

    (tmp / MARKER).write_text(RECIPE)
    shutil.rmtree(outdir, ignore_errors=True)
    tmp.rename(outdir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("outdir", type=Path, help="directory to write the model into")
    args = parser.parse_args(argv)
    outdir: Path = args.outdir.resolve()
    if is_built(outdir):
        print(f"tiny model already built: {outdir}", file=sys.stderr)
    else:
        build(outdir)
        print(f"tiny model built: {outdir}", file=sys.stderr)
    print(outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
