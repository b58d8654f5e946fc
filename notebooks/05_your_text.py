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
# # 05. 내 텍스트로 학습하기: 학습, 샘플링, 셀 들여다보기
#
# 01의 실습은 문장 하나를 외웠습니다. 이제 긴 텍스트로 **문자 언어 모델**을 학습합니다: 어떤
# 텍스트든 다음 글자를 예측하는 모델입니다.
#
# 1. 텍스트 고르기: 내장 말뭉치 또는 내 파일
# 2. 학습하고 (글자당 bit로) 평가하기
# 3. 샘플링: temperature와 greedy
# 4. 셀 들여다보기: 어떤 unit이 무엇을 세고 있는가
#
# 명령줄에서는 `nextchar train shakespeare`, `nextchar sample runs/shakespeare`와 같습니다.

# %% [markdown] lang="en"
# # 05. Training on your own text: train, sample, look inside the cells
#
# The lab of 01 memorised one sentence. Now a **character language model** learns from a
# long text: a model that predicts the next character of any text.
#
# 1. Choosing a text: a built-in corpus or your own file
# 2. Training, and measuring in bits per character
# 3. Sampling: temperature and greedy
# 4. Looking inside the cells: which unit counts what
#
# On the command line: `nextchar train shakespeare`, `nextchar sample runs/shakespeare`.

# %%
import math

import numpy as np
from IPython.display import HTML, display

import nextchar
from nextchar.display import htmlview
from nextchar.display.figures import figure, hangul_fonts
from nextchar.inference.cells import activations, correlate, pattern_signal
from nextchar.text.corpora import CORPORA
from nextchar.text.data import read_text

for corpus in CORPORA.values():
    train_chars, val_chars = corpus.chars
    print(f"{corpus.name:12} {train_chars:>10,} + {val_chars:>8,} characters  {corpus.title}")

# %% [markdown] lang="ko"
# ## 1. 텍스트 고르기
#
# 파일이 있으면 파일 이름을, 없으면 내장 말뭉치 이름(`shakespeare`, `korean`)을 줍니다.
# `NAME`은 학습용 텍스트, `NAME:val`은 검증용 텍스트입니다. 같은 이름의 파일이 현재 폴더에
# 있으면 그 파일이 우선합니다. 내 텍스트로 하려면 아래 셀에서 `text_source`를 파일 경로로
# 바꾸세요 (UTF-8 텍스트; 수십만 글자 이상이면 좋습니다).

# %% [markdown] lang="en"
# ## 1. Choosing a text
#
# Give a file name, or the name of a built-in corpus (`shakespeare`, `korean`): `NAME` is its
# training text, `NAME:val` its validation text. A file of the same name in the current
# folder wins. For your own text, set `text_source` below to a file's path (UTF-8 text; a few
# hundred thousand characters or more is best).

# %%
text_source = "shakespeare"
print(read_text(text_source)[:300])

# %% [markdown] lang="ko"
# ## 2. 학습
#
# LSTM 1층 256 unit을 200 step 학습합니다 (2코어 CPU에서 약 40초). 64개의 흐름(stream)을
# 나란히 읽고, 창(window)에서 창으로 hidden state를 이어 갑니다. 결과는 검증 텍스트 전체에서
# 잰 **글자당 bit**입니다. 기본값(`nextchar.train(text_source)`, GRU 2 × 384, 8분)이면
# 2.1 bit 근처까지 내려갑니다. 진행 막대는 Jupyter에서는 위젯으로(ipywidgets), 터미널에서는 글자로
# 보입니다.

# %% [markdown] lang="en"
# ## 2. Training
#
# An LSTM, 1 layer of 256 units, for 200 steps (about 40 seconds on 2 CPU cores). It reads 64
# streams side by side and carries the hidden state from window to window. The result is
# **bits per character** on the whole validation text. The default
# (`nextchar.train(text_source)`, a GRU 2 × 384 for 8 minutes) gets down to about 2.1 bits.
# The progress bar is a widget in Jupyter (ipywidgets) and text in a terminal.

# %%
run = nextchar.train(
    text_source, cell="lstm", hidden_size=256, num_layers=1, max_steps=200, eval_every=100,
)  # fmt: skip
run

# %% [markdown] lang="ko"
# ### ✏️ 연습 1
#
# 글자당 bit가 b이면, 모델은 평균적으로 몇 개의 글자 중에서 고르는 것만큼 헷갈리고 있을까요?
# (perplexity = $2^b$.) 그리고 모든 글자를 똑같은 확률로 고르는 모델의 글자당 bit는?

# %% [markdown] lang="en"
# ### ✏️ Exercise 1
#
# At b bits per character, the model is as unsure as if it picked among how many characters
# (perplexity = $2^b$)? And what are the bits per character of a model that gives every
# character the same probability?

# %% tags=["exercise"]
model = nextchar.load(run.run_dir)
V = model.tokenizer.vocab_size
perplexity = 2**run.final_val_bpc  # solution
uniform_bits = math.log2(V)  # solution

assert abs(perplexity - run.final_val_perplexity) < 1e-6
assert run.final_val_bpc < uniform_bits - 2, "it learned something: far below uniform"
print(f"✔ like choosing among {perplexity:.1f} of {V} characters; uniform: {uniform_bits:.2f} bits")

# %% [markdown] lang="ko"
# ## 3. 샘플링
#
# `temperature`가 낮으면 확률이 높은 글자를 더 자주 고르고(안전하지만 반복적), 높으면 더
# 모험적입니다. 같은 seed는 같은 글을 만듭니다.

# %% [markdown] lang="en"
# ## 3. Sampling
#
# A low `temperature` picks the likely characters more often (safe, but repetitive); a high
# one is more adventurous. The same seed gives the same text.

# %%
for temperature in (0.5, 1.0):
    print(f"--- temperature {temperature}")
    print("ROMEO:" + model.sample("ROMEO:", length=200, temperature=temperature, seed=1))
model.predict("ROMEO", k=5)

# %% [markdown] lang="ko"
# ### ✏️ 연습 2
#
# seed와 상관없이 언제나 같은 글을 만드는 샘플링 옵션은? (`nextchar sample --help`에 있습니다.)

# %% [markdown] lang="en"
# ### ✏️ Exercise 2
#
# Which sampling option makes the same text whatever the seed? (`nextchar sample --help`
# lists it.)

# %% tags=["exercise"]
option = {"greedy": True}  # solution

one = model.sample("ROMEO:", length=60, seed=1, **option)
two = model.sample("ROMEO:", length=60, seed=2, **option)
assert one == two, "the most likely character every time"
print("✔", repr(one))

# %% [markdown] lang="ko"
# ## 4. 셀 들여다보기
#
# 학습된 LSTM의 cell state `c`에는 256개의 unit이 있습니다. 검증 텍스트를 읽히면서 각 unit의
# 값을 기록하고, "줄의 몇 번째 글자인가"와 가장 비슷하게 움직이는 unit을 찾습니다 (Pearson
# 상관계수 r). 아무도 줄 길이를 세라고 가르치지 않았지만, 줄바꿈을 예측하려면 그것이
# 필요합니다. 빨강은 양수, 파랑은 음수입니다.

# %% [markdown] lang="en"
# ## 4. Looking inside the cells
#
# The trained LSTM's cell state `c` has 256 units. Reading the validation text, we record each
# unit's value and look for the one that moves most like "how far into the line are we"
# (Pearson's r). Nobody taught it to count characters in a line, but predicting the newline
# needs it. Red is positive, blue negative.

# %%
sample_text = read_text(f"{text_source}:val")[:1500]
seen = activations(model.model, model.tokenizer, sample_text)
cells = seen.values("c", 0)  # [characters, units]
signal = pattern_signal(seen.tokens, "line_position")
for unit, r in correlate(cells, signal, top=3):
    print(f"unit {unit:3d}  r = {r:+.2f}")
best, best_r = correlate(cells, signal, top=1)[0]
display(HTML(htmlview.text_heat(seen.tokens[:600], cells[:600, best].tolist())))

# %% [markdown] lang="ko"
# 같은 것을 unit 여러 개에 대해 그림으로 봅시다: 가로는 글자, 세로는 unit (상관이 큰 순서).
# 그림 제목의 한글은 `hangul_fonts()` 안에서 그려서 네모로 깨지지 않습니다.

# %% [markdown] lang="en"
# The same for many units at once: characters across, units down (most correlated first). The
# title's Hangul is drawn inside `hangul_fonts()`, so it shows as Hangul, not as boxes.

# %%
order = [unit for unit, _ in correlate(cells, signal, top=24)]
with hangul_fonts():
    fig = figure(figsize=(10, 4), dpi=100)
    ax = fig.subplots()
    span = cells[:160, order].T.numpy()
    limit = float(np.abs(span).max())
    ax.imshow(span, aspect="auto", cmap="coolwarm", vmin=-limit, vmax=limit)
    ax.set_xticks(range(160), [t if t != "\n" else "↵" for t in seen.tokens[:160]], fontsize=6)
    ax.set_yticks(range(len(order)), [str(u) for u in order], fontsize=6)
    ax.set_title("LSTM 셀 상태 c: 줄 위치와 상관이 큰 unit (cell state units)")
    fig.tight_layout()
    fig.savefig(run.run_dir / "cells.png")
display(HTML(htmlview.png(run.run_dir / "cells.png", "cell heatmap")))

# %% [markdown] lang="ko"
# ### ✏️ 연습 3
#
# `correlate`가 말한 r을 numpy의 `np.corrcoef`로 직접 계산해서 확인하세요.

# %% [markdown] lang="en"
# ### ✏️ Exercise 3
#
# Check the r that `correlate` reported with numpy's `np.corrcoef`.

# %% tags=["exercise"]
r_numpy = np.corrcoef(cells[:, best].double().numpy(), np.array(signal))[0, 1]  # solution

assert abs(r_numpy - best_r) < 1e-6
assert abs(best_r) > 0.4, "some unit follows the position in the line"
print(f"✔ unit {best}: r = {r_numpy:+.3f}")
