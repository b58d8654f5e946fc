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
# # 02. LSTM: RNN이 잊어버리는 것을 기억하기
#
# **Long-Term Dependency 문제.** RNN은 이론적으로 모든 이전 time step의 영향을 받지만,
# 실제로는 sequence가 길어질수록 앞쪽 time step(t=0, t=1 …)의 영향이 사라집니다.
#
# **LSTM의 핵심**: 네트워크가 장기 상태 $c_t$에서 기억할 부분, 삭제할 부분, 읽어 들일 부분을
# 학습합니다. 게이트 세 개(input $i$, forget $f$, output $o$)와 후보 값 $g$가
#
# $$c_t = f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t)$$
#
# 를 만듭니다. $c_t$는 곱셈 대신 **덧셈**으로 이어지므로, $f \approx 1$이면 기억(과 gradient)이
# 거의 그대로 전달됩니다.
#
# 1. `nn.LSTM`의 입력과 출력: `(h_0, c_0)`, `proj_size`, `bidirectional`
# 2. 01의 실습을 LSTM으로
# 3. 실험: 단서가 D 글자 앞에 있을 때, RNN·LSTM·GRU의 정확도
# 4. 왜 그런가: gradient가 얼마나 멀리 거슬러 올라가는가

# %% [markdown] lang="en"
# # 02. LSTM: remembering what an RNN forgets
#
# **The long-term dependency problem.** In theory every earlier time step influences an RNN's
# output; in practice the influence of early steps (t=0, t=1, …) fades as sequences get
# longer.
#
# **The heart of the LSTM**: the network learns what to keep in its long-term state $c_t$,
# what to erase and what to read. Three gates (input $i$, forget $f$, output $o$) and a
# candidate $g$ make
#
# $$c_t = f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t)$$
#
# $c_t$ is carried by **addition**, not multiplication: where $f \approx 1$ the memory (and
# the gradient) passes almost unchanged.
#
# 1. `nn.LSTM`'s inputs and outputs: `(h_0, c_0)`, `proj_size`, `bidirectional`
# 2. The lab of 01 with an LSTM
# 3. The experiment: a clue D characters back; how accurate are RNN, LSTM and GRU?
# 4. Why: how far back does the gradient reach?

# %%
from pathlib import Path
from statistics import mean

import torch
import torch.nn as nn
from IPython.display import Image, display

import nextchar
from nextchar.classroom import long_range

# ko: 작은 모델에는 스레드 하나가 가장 빠르고, 다른 프로그램이 코어를 쓸 때도 느려지지 않습니다
# en: tiny models: one thread is fastest, and stays fast while another program takes a core
torch.set_num_threads(1)
torch.manual_seed(0)

# %% [markdown] lang="ko"
# ## 1. `nn.LSTM`의 모양
#
# 입력은 `input, (h_0, c_0)`, 출력은 `output, (h_n, c_n)`입니다. hidden state `h`와 cell
# state `c`가 따로 있습니다.

# %% [markdown] lang="en"
# ## 1. The shapes of `nn.LSTM`
#
# It takes `input, (h_0, c_0)` and returns `output, (h_n, c_n)`: a hidden state `h` and a
# cell state `c`.

# %%
lstm = nn.LSTM(input_size=4, hidden_size=2, batch_first=True)
x = torch.randn(1, 5, 4)
output, (h_n, c_n) = lstm(x)
print("output:", tuple(output.shape), " h_n:", tuple(h_n.shape), " c_n:", tuple(c_n.shape))
print("weight_ih_l0:", tuple(lstm.weight_ih_l0.shape), " # (4*hidden_size, input_size): i|f|g|o")

# %% [markdown] lang="ko"
# `proj_size`를 주면 `h`가 `hidden_size`에서 `proj_size`로 투영됩니다: `c`의 크기는
# `H_cell = hidden_size`, `h`와 출력의 크기는 `H_out = proj_size`. `bidirectional=True`이면
# D = 2: 앞에서 뒤로, 뒤에서 앞으로 읽는 두 LSTM의 출력이 이어 붙습니다.

# %% [markdown] lang="en"
# With `proj_size`, `h` is projected from `hidden_size` down to `proj_size`: `c` has
# `H_cell = hidden_size` units, `h` and the output `H_out = proj_size`. With
# `bidirectional=True`, D = 2: the outputs of a forward and a backward LSTM are concatenated.

# %%
nextchar.shapes("lstm", input_size=4, hidden_size=3, proj_size=1, bidirectional=True)

# %% [markdown] lang="ko"
# ### ✏️ 연습 1
#
# `nn.LSTM(input_size=4, hidden_size=6, proj_size=3, num_layers=2, bidirectional=True,
# batch_first=True)`에 batch 2, 길이 5의 입력을 넣으면 `output`, `h_n`, `c_n`의 모양은?

# %% [markdown] lang="en"
# ### ✏️ Exercise 1
#
# `nn.LSTM(input_size=4, hidden_size=6, proj_size=3, num_layers=2, bidirectional=True,
# batch_first=True)` reads a batch of 2 sequences of length 5. What are the shapes of
# `output`, `h_n` and `c_n`?

# %% tags=["exercise"]
output_shape = (2, 5, 6)  # solution
h_n_shape = (4, 2, 3)  # solution
c_n_shape = (4, 2, 6)  # solution

big = nn.LSTM(4, 6, proj_size=3, num_layers=2, bidirectional=True, batch_first=True)
out, (h, c) = big(torch.randn(2, 5, 4))
assert output_shape == tuple(out.shape), "output: (N, L, D*H_out)"
assert h_n_shape == tuple(h.shape), "h_n: (D*num_layers, N, H_out)"
assert c_n_shape == tuple(c.shape), "c_n: (D*num_layers, N, H_cell)"
print("✔")

# %% [markdown] lang="ko"
# ### ✏️ 연습 2
#
# `nn.LSTM(input_size=4, hidden_size=2)`의 파라미터는 모두 몇 개일까요? (게이트 4개 각각에
# $W_{ih}$, $W_{hh}$, $b_{ih}$, $b_{hh}$)

# %% [markdown] lang="en"
# ### ✏️ Exercise 2
#
# How many parameters does `nn.LSTM(input_size=4, hidden_size=2)` have? (Each of the 4 gate
# blocks has its $W_{ih}$, $W_{hh}$, $b_{ih}$ and $b_{hh}$.)

# %% tags=["exercise"]
n_parameters = 4 * (2 * 4 + 2 * 2 + 2 + 2)  # solution

assert n_parameters == sum(p.numel() for p in nn.LSTM(4, 2).parameters())
print("✔", n_parameters)

# %% [markdown] lang="ko"
# ## 2. 01의 실습을 LSTM으로
#
# 같은 문장, 같은 설정에 셀만 LSTM으로 바꿉니다. 게이트 때문에 파라미터가 4배이고, 이 짧은
# 문장에서는 RNN보다 조금 늦게 수렴합니다.

# %% [markdown] lang="en"
# ## 2. The lab of 01 with an LSTM
#
# The same sentence and settings, only the cell changes. The gates make 4 times the
# parameters, and on this short sentence the LSTM converges a little later than the RNN.

# %%
lab_lstm = nextchar.lab(cell="lstm", every=100)
lab_rnn = nextchar.lab(cell="rnn", every=100)
print(f"rnn : {lab_rnn.parameters} parameters, first equal at epoch {lab_rnn.first_match_epoch}")
print(f"lstm: {lab_lstm.parameters} parameters, first equal at epoch {lab_lstm.first_match_epoch}")
lab_lstm

# %% [markdown] lang="ko"
# ## 3. 실험: 단서가 D 글자 앞에 있을 때
#
# 문장 하나로는 장기 의존성을 볼 수 없습니다. `remember` 과제: `abcdefgh` 중 한 글자, 무작위
# 숫자 D개, `?`가 오면 모델은 맨 앞의 글자를 답해야 합니다 (우연히 맞힐 확률 1/8). 답은
# 맨 앞 글자 하나에만 달려 있고, 그 사이의 숫자는 아무 상관이 없습니다.
#
# 세 셀이 같은 예산(Adam 250 step, hidden 32)으로 배우고, 새로운 512개 sequence로 평가합니다.
# 명령줄에서는 `nextchar experiment long-range --quick` (두 과제, seed 2개)입니다. 2코어 CPU에서
# 약 20초 걸립니다.

# %% [markdown] lang="en"
# ## 3. The experiment: a clue D characters back
#
# One sentence cannot show long-range dependencies. The `remember` task: one of `abcdefgh`,
# D random digits, then `?`: the model must answer the first symbol (chance: 1/8). The answer
# depends on that one symbol alone; the digits in between are noise.
#
# Each cell learns on the same budget (250 Adam steps, 32 hidden units) and is scored on 512
# fresh sequences. On the command line: `nextchar experiment long-range --quick` (both tasks,
# 2 seeds). About 20 seconds on 2 CPU cores.

# %%
example, answer = long_range.make_batch("remember", 10, 1, torch.Generator().manual_seed(1))
alphabet = long_range.ALPHABET
print("".join(alphabet[i] for i in example[0]), "→", alphabet[answer[0]])

config = long_range.LongRangeConfig(
    tasks=("remember",), cells=("rnn", "lstm", "gru"), distances=(2, 5, 10, 20), seeds=1
)
result = long_range.run_long_range(config)
print(long_range.summary_table(result))

# %%
paths = long_range.write_outputs(result, Path("runs/long-range"))
display(Image(filename=str(paths[1])))

# %% [markdown] lang="ko"
# RNN은 단서가 5글자만 떨어져도 우연 수준(12%)으로 떨어집니다. 같은 예산으로 LSTM은 5글자까지,
# GRU는 20글자까지 기억합니다. (LSTM은 forget gate가 0.5 근처에서 시작해서, 이 짧은 학습으로는
# 아직 더 멀리 기억하는 법을 배우지 못했습니다.)
#
# ### ✏️ 연습 3
#
# `result.accuracy["remember"]["rnn"]`는 거리 D마다 seed별 정확도의 목록입니다. RNN이 90%
# 넘게 맞히는 가장 먼 거리 D는?

# %% [markdown] lang="en"
# The RNN falls to chance (12 %) as soon as the clue is 5 characters back. With the same
# budget the LSTM holds at 5 and the GRU up to 20. (The LSTM starts with its forget gate near
# 0.5; this short training has not yet taught it to keep its cell further.)
#
# ### ✏️ Exercise 3
#
# `result.accuracy["remember"]["rnn"]` maps each distance D to its accuracies (one per
# seed). What is the furthest D at which the RNN is right more than 90 % of the time?

# %% tags=["exercise"]
by_distance = result.accuracy["remember"]["rnn"]
rnn_reach = max(int(d) for d, accs in by_distance.items() if mean(accs) > 0.9)  # solution

assert rnn_reach == 2, "look at the rnn row of the table"
gru = result.accuracy["remember"]["gru"]
assert mean(gru["20"]) > mean(by_distance["20"]) + 0.5, "the gated GRU holds where the RNN fails"
print("✔ rnn reaches", rnn_reach)

# %% [markdown] lang="ko"
# ## 4. 왜 그런가: gradient view
#
# 답의 loss가 t step 전의 입력에 얼마나 의존하는지, $\lVert \partial \text{loss} /
# \partial x_t \rVert$를 가장 먼 거리에서 그렸습니다 (로그 눈금; 점선은 학습 전 모델).
# tanh RNN에서 t step 전까지 가는 gradient는 순환 Jacobian $\mathrm{diag}(1-h^2) W_{hh}$를
# t번 곱한 것이라 기하급수적으로 작아집니다. LSTM과 GRU는 게이트가 있는 덧셈 경로로 기억을
# 전달해서, 게이트가 "유지"를 배운 곳에서는 gradient가 거의 그대로 전달됩니다.

# %% [markdown] lang="en"
# ## 4. Why: the gradient view
#
# How strongly the answer's loss depends on the input t steps earlier,
# $\lVert \partial \text{loss} / \partial x_t \rVert$, at the longest distance (log scale;
# dotted: the untrained model). In a tanh RNN, the gradient that reaches t steps back has been
# multiplied by the recurrent Jacobian $\mathrm{diag}(1-h^2) W_{hh}$ t times: it shrinks
# geometrically. LSTM and GRU carry memory through a gated, additive path: where the gates
# have learned to keep, the gradient passes almost unchanged.

# %%
display(Image(filename=str(paths[2])))
trained = result.gradients["remember"]
for cell, views in trained.items():
    norms = views["trained"]
    back = len(norms) - 1
    print(f"{cell:5} gradient at the answer {norms[0]:.1e}, {back} steps back {norms[-1]:.1e}")

# %% [markdown] lang="ko"
# ### ✏️ 연습 4
#
# 학습된 RNN에서, 맨 앞(단서) 위치의 gradient는 답 위치의 gradient보다 몇 자릿수(10의
# 거듭제곱) 작나요? `math.log10`으로 구하세요.

# %% [markdown] lang="en"
# ### ✏️ Exercise 4
#
# In the trained RNN, by how many orders of magnitude (powers of 10) is the gradient at the
# first (clue) position smaller than at the answer? Use `math.log10`.

# %% tags=["exercise"]
import math

rnn_norms = trained["rnn"]["trained"]
orders = math.log10(rnn_norms[0] / rnn_norms[-1])  # solution

gru_norms = trained["gru"]["trained"]
assert orders > 3, "the RNN's gradient vanishes over 20 steps"
assert orders > math.log10(gru_norms[0] / gru_norms[-1]) + 2, "the GRU's does much less"
print(f"✔ {orders:.1f} orders of magnitude")
