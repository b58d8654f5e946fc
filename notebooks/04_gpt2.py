# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] lang="ko"
# # 04. GPT-2: 글자 대신 토큰 예측
#
# **GPT**는 OpenAI의 모델입니다. 아주 많은 문장으로 **다음 토큰 예측**을 미리 학습(pre-training)
# 해서 많은 과제에서 좋은 성능을 보입니다 (transformer 기반). GPT-3는 유료이고, GPT-2는
# Hugging Face에서 쓸 수 있습니다.
#
# nextchar는 GPT-2를 RNN과 같은 명령 뒤에 둡니다: 같은 `predict`, `sample`, 같은 숫자(글자당
# bit)로 비교합니다.
#
# 1. 토큰: GPT-2의 BPE는 영어와 한국어를 어떻게 자르는가
# 2. 다음 토큰 예측과 샘플링
# 3. 같은 글로 RNN과 GPT-2 비교하기
#
# 필요한 패키지: `pip install "nextchar[gpt2]"` (transformers, tokenizers).
#
# **인터넷이 없는 교실에서도 동작합니다.** GPT-2 가중치(500 MB)가 이 컴퓨터의 Hugging Face
# cache에 있으면 그것을 쓰고, 없으면 여기서 작은 GPT-2를 1분 안에 직접 학습해서 씁니다.
# 아래 셀이 어느 쪽인지 알려 줍니다.

# %% [markdown] lang="en"
# # 04. GPT-2: predicting tokens instead of characters
#
# **GPT** is OpenAI's model: pre-trained on a very large amount of text to **predict the
# next token**, it does well on many tasks (it is a transformer). GPT-3 is paid; GPT-2 is on
# Hugging Face.
#
# nextchar puts GPT-2 behind the same commands as the RNNs: the same `predict`, `sample`, and
# the same number (bits per character) to compare them.
#
# 1. Tokens: how GPT-2's BPE cuts English and Korean
# 2. Next-token prediction and sampling
# 3. An RNN and a GPT-2 compared on one text
#
# Needs `pip install "nextchar[gpt2]"` (transformers, tokenizers).
#
# **It works in a classroom without internet.** If GPT-2's weights (500 MB) are in this
# machine's Hugging Face cache they are used; if not, a small GPT-2 is trained here, within a
# minute, and used instead. The cell below says which.

# %%
import math
from pathlib import Path

from IPython.display import Image, display

import nextchar
from nextchar.inference.compare import compare, plot, table
from nextchar.models.gpt2 import pretrained_on_disk
from nextchar.text.data import read_text
from nextchar.text.tokenizers import token_report

if pretrained_on_disk("gpt2"):
    source = "gpt2"
    print("GPT-2 (124 M parameters) from this machine's Hugging Face cache")
else:
    # ko: 가중치가 없으면: 내장 한국어 말뭉치로 작은 GPT-2 (2층, 폭 64, BPE 512)를 학습합니다
    # en: no weights here: train a small GPT-2 (2 layers, width 64, BPE 512) on the Korean corpus
    print(
        "GPT-2's weights are not on this machine (and nothing is downloaded here): using a "
        "small GPT-2 trained now on the built-in Korean corpus instead.\n"
        "With internet, nextchar.load('gpt2') fetches the real one once."
    )
    source = nextchar.train(
        "korean", model="gpt2", tokenizer="bpe", vocab_size=512, n_layer=2, n_head=2,
        n_embd=64, block_size=64, seq_len=64, batch_size=16, max_steps=300, eval_every=300,
        progress=False,
    ).run_dir  # fmt: skip
gpt2 = nextchar.load(source)
gpt2

# %% [markdown] lang="ko"
# ## 1. 토큰
#
# GPT-2는 글자가 아니라 **BPE 토큰**을 예측합니다. BPE는 자주 함께 나오는 조각을 하나의
# 토큰으로 합칩니다. 영어 텍스트로 배운 GPT-2의 BPE에는 한글 조각이 거의 없어서, 한글 한
# 글자(UTF-8로 3 byte)가 토큰 여러 개로 잘립니다. 한국어로 학습한 작은 모델의 BPE는 반대로
# 영어를 잘게 자릅니다: **토크나이저는 배운 글만큼만 좋습니다.**

# %% [markdown] lang="en"
# ## 1. Tokens
#
# GPT-2 predicts **BPE tokens**, not characters: BPE merges pieces that often occur together
# into one token. GPT-2's BPE learned from English text has few merges for Hangul, so one
# Korean character (3 bytes in UTF-8) becomes several tokens. The small model's BPE, learned
# from Korean, cuts English into small pieces instead: **a tokenizer is only as good as the
# text it learned from**.

# %%
english = "Seoul is the capital of South Korea."
korean = "서울은 대한민국의 수도이다."
for text in (english, korean):
    pieces = [gpt2.tokenizer.token_text(i) for i in gpt2.tokenizer.encode(text)]
    print(f"{len(text)} characters -> {len(pieces)} tokens: {pieces}")

report = token_report(gpt2.tokenizer, read_text("korean:val"))
print("\n".join(report.lines("korean:val")))

# %% [markdown] lang="ko"
# ### ✏️ 연습 1
#
# `report`로 한국어 검증 텍스트의 글자당 토큰 수를 계산하세요.

# %% [markdown] lang="en"
# ### ✏️ Exercise 1
#
# From `report`, compute the tokens per character of the Korean validation text.

# %% tags=["exercise"]
tokens_per_char = report.tokens / report.chars  # solution

assert abs(tokens_per_char - report.tokens_per_char) < 1e-12
assert report.chars == len(read_text("korean:val"))
print(f"✔ {tokens_per_char:.2f} tokens per character")

# %% [markdown] lang="ko"
# ## 2. 다음 토큰 예측과 샘플링
#
# `predict`는 다음 토큰의 확률 분포에서 가장 높은 k개를 보여 줍니다. 한 글자의 일부인 토큰은
# `<0xEC>`처럼 byte로 표시됩니다. `sample`은 한 번에 한 토큰씩 이어 씁니다 (`top_p`: 확률이
# 높은 토큰들만으로 누적 확률 p까지에서 뽑기).

# %% [markdown] lang="en"
# ## 2. Next-token prediction and sampling
#
# `predict` shows the k most likely next tokens; a token that is part of a character is shown
# as bytes, such as `<0xEC>`. `sample` writes on one token at a time (`top_p`: draw only from
# the most likely tokens that together hold probability p).

# %%
prompt = "Seoul is the capital of" if source == "gpt2" else "대한민국은 민주"
gpt2.predict(prompt, k=8)

# %%
print(prompt + gpt2.sample(prompt, length=40, top_p=0.9, seed=0))

# %% [markdown] lang="ko"
# ## 3. 같은 글로 비교하기: 글자당 bit
#
# 모델마다 토큰이 다르므로 토큰당 loss나 perplexity는 비교할 수 없습니다. **글자당 bit**는
# 비교할 수 있습니다: 텍스트 전체의 음의 로그 우도(NLL, nats)를 글자 수로 나누고 $\ln 2$로
# 나눈 값입니다. 같은 말뭉치로 작은 글자 단위 GRU를 학습해서 GPT-2와 한국어 검증 텍스트로
# 비교합니다 (명령줄: `nextchar compare korean:val RUN ...`).

# %% [markdown] lang="en"
# ## 3. Compared on one text: bits per character
#
# Each model has its own tokens, so loss or perplexity per token do not compare. **Bits per
# character** do: the negative log-likelihood (NLL, in nats) of the whole text, divided by its
# number of characters and by $\ln 2$. A small character-level GRU trained on the same corpus
# meets GPT-2 on the Korean validation text (command line: `nextchar compare korean:val RUN
# ...`).

# %%
gru = nextchar.train(
    "korean", cell="gru", hidden_size=128, num_layers=1, embedding_dim=32, batch_size=16,
    seq_len=64, max_steps=300, eval_every=300, progress=False,
)  # fmt: skip
rows = compare([str(gru.run_dir), str(source)], read_text("korean:val"))
print(table(rows))
display(Image(filename=str(plot(rows, Path("runs/compare.png"), "korean:val"))))

# %% [markdown] lang="ko"
# ### ✏️ 연습 2
#
# `rows[0].result`에는 `nll`(nats), `chars`, `tokens`가 있습니다. 글자당 bit와 토큰당
# perplexity를 직접 계산하세요.

# %% [markdown] lang="en"
# ### ✏️ Exercise 2
#
# `rows[0].result` has `nll` (nats), `chars` and `tokens`. Compute the bits per character and
# the perplexity per token yourself.

# %% tags=["exercise"]
r = rows[0].result
bits_per_char = r.nll / r.chars / math.log(2)  # solution
perplexity = math.exp(r.nll / r.tokens)  # solution

assert abs(bits_per_char - r.bits_per_char) < 1e-9, "nats / characters / ln 2"
assert abs(perplexity - r.perplexity) < 1e-6, "exp(nats per token)"
print(f"✔ {bits_per_char:.3f} bits per character, perplexity {perplexity:.2f} per character")

# %% [markdown] lang="ko"
# ### ✏️ 연습 3
#
# 글자 단위 모델에서는 토큰 하나가 글자 하나입니다. 그렇다면 perplexity와 글자당 bit
# 사이에는 어떤 관계가 있을까요? 식으로 perplexity를 bit로 바꾸세요.

# %% [markdown] lang="en"
# ### ✏️ Exercise 3
#
# In a character model one token is one character. How are its perplexity and its bits per
# character related? Turn the perplexity into bits with a formula.

# %% tags=["exercise"]
from_perplexity = math.log2(r.perplexity)  # solution

assert r.tokens == r.chars, "a character model: one token per character"
assert abs(from_perplexity - r.bits_per_char) < 1e-9
print(f"✔ log2({r.perplexity:.2f}) = {from_perplexity:.3f} bits per character")
