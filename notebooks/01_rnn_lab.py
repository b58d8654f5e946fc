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
# # 01. RNN으로 다음 글자 예측하기
#
# 오늘 실습: **RNN을 이용한 character prediction**.
# 순서 데이터(sequence data)는 이전 출력이 현재 결과에 영향을 줍니다. RNN은 time step마다
# 글자 하나를 입력받고, 지금까지 읽은 것을 hidden state `h`에 담아 **다음 글자**를 예측합니다.
#
# 1. 글자를 숫자로: one-hot encoding
# 2. `nn.RNN`의 입력과 출력의 모양(shape)
# 3. 실습 노트의 학습 코드, 한 줄 한 줄
# 4. 같은 실습을 `nextchar.lab()`으로
#
# 실습에서는 문장의 처음과 끝을 나타내는 `<S>`, `<E>` 토큰을 쓰지 않습니다.
# 연습 문제(✏️)의 `assert`가 통과하면 정답입니다.

# %% [markdown] lang="en"
# # 01. Predicting the next character with an RNN
#
# Today's lab: **character prediction with an RNN**. In sequence data, what came before
# shapes what comes next. An RNN reads one character per time step, keeps what it has read in
# its hidden state `h`, and predicts the **next character**.
#
# 1. Characters as numbers: one-hot encoding
# 2. The shapes of `nn.RNN`'s inputs and outputs
# 3. The training code of the lab notes, line for line
# 4. The same lab with `nextchar.lab()`
#
# The lab uses no `<S>`/`<E>` tokens for the start and end of a sentence.
# An exercise (✏️) is solved when its `assert` passes.

# %%
import math

import numpy as np
import torch
import torch.nn as nn

import nextchar

# ko: 작은 모델에는 스레드 하나가 가장 빠르고, 다른 프로그램이 코어를 쓸 때도 느려지지 않습니다
# en: tiny models: one thread is fastest, and stays fast while another program takes a core
torch.set_num_threads(1)
torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print(f"torch {torch.__version__}, nextchar {nextchar.__version__}, {device}")

# %% [markdown] lang="ko"
# ## 1. One-hot encoding
#
# 글자를 모델에 넣으려면 숫자로 바꿔야 합니다. 사전(vocabulary)의 크기가 N이면 글자 하나는
# 길이 N의 벡터이고, 그 글자의 index 자리만 1, 나머지는 0입니다. `"hello"`의 사전은
# `h e l o` 네 글자이므로 N = 4입니다.

# %% [markdown] lang="en"
# ## 1. One-hot encoding
#
# A model takes numbers, not characters. With a vocabulary of N characters, a character is a
# vector of length N with a 1 at its index and 0 elsewhere. The vocabulary of `"hello"` is the
# four characters `h e l o`, so N = 4.

# %%
vocab = ["h", "e", "l", "o"]
one_hot = np.eye(len(vocab))
for ch in vocab:
    print(ch, one_hot[vocab.index(ch)])

x = torch.tensor(np.array([[one_hot[vocab.index(ch)] for ch in "hello"]]), dtype=torch.float32)
print("x.shape =", tuple(x.shape), " # (batch N, length L, input_size H_in)")

# %% [markdown] lang="ko"
# ## 2. `nn.RNN`의 모양
#
# `nn.RNN(input_size=4, hidden_size=2, batch_first=True)`는 매 time step마다
#
# $$h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})$$
#
# 를 계산합니다. `batch_first=True`이면 입력과 출력이 `(batch, seq, feature)` 순서입니다
# (hidden state에는 적용되지 않습니다). `h_0`를 주지 않으면 0으로 시작합니다.

# %% [markdown] lang="en"
# ## 2. The shapes of `nn.RNN`
#
# `nn.RNN(input_size=4, hidden_size=2, batch_first=True)` computes, at every time step,
#
# $$h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})$$
#
# With `batch_first=True`, input and output are `(batch, seq, feature)` (the hidden state is
# not affected). Without an `h_0`, the state starts at zeros.

# %%
rnn = nn.RNN(input_size=4, hidden_size=2, batch_first=True)
output, h_n = rnn(x)
print("output:", tuple(output.shape), " h_n:", tuple(h_n.shape))
print("W_ih:", tuple(rnn.weight_ih_l0.shape), " W_hh:", tuple(rnn.weight_hh_l0.shape))

# %% [markdown] lang="ko"
# 식을 직접 계산해서 `nn.RNN`과 같은지 확인해 봅시다. torch는 $W_{ih}$를 `(hidden, input)`
# 모양으로 저장합니다 (노트의 `4 × 2`는 그 전치입니다).

# %% [markdown] lang="en"
# Computing the formula by hand gives what `nn.RNN` gives. torch stores $W_{ih}$ as
# `(hidden, input)` (the notes' `4 × 2` is its transpose).

# %%
h = torch.zeros(2)
by_hand = []
for t in range(x.shape[1]):
    h = torch.tanh(
        rnn.weight_ih_l0 @ x[0, t] + rnn.bias_ih_l0 + rnn.weight_hh_l0 @ h + rnn.bias_hh_l0
    )
    by_hand.append(h)
by_hand = torch.stack(by_hand)
print(by_hand)
assert torch.allclose(by_hand, output[0], atol=1e-6)
assert torch.allclose(h, h_n[0, 0], atol=1e-6)  # h_n is the last step's h

# %% [markdown] lang="ko"
# `nextchar.shapes()`는 진짜 모듈을 만들어 실행하고, 모든 모양을 PyTorch 문서의 표기로
# 보여 줍니다.

# %% [markdown] lang="en"
# `nextchar.shapes()` builds the real module, runs it, and shows every shape in the notation of
# the PyTorch docs.

# %%
nextchar.shapes("rnn", input_size=4, hidden_size=2, seq_len=5)

# %% [markdown] lang="ko"
# ### ✏️ 연습 1
#
# `nn.RNN(input_size=4, hidden_size=5, num_layers=2, batch_first=True)`에 batch 3개,
# 길이 7의 입력을 넣으면 `output`과 `h_n`의 모양은? 실행하기 전에 답을 적으세요.

# %% [markdown] lang="en"
# ### ✏️ Exercise 1
#
# `nn.RNN(input_size=4, hidden_size=5, num_layers=2, batch_first=True)` gets a batch of 3
# sequences of length 7. What are the shapes of `output` and `h_n`? Write them down before you
# run it.

# %% tags=["exercise"]
output_shape = (3, 7, 5)  # solution
h_n_shape = (2, 3, 5)  # solution

deep = nn.RNN(input_size=4, hidden_size=5, num_layers=2, batch_first=True)
out, last = deep(torch.zeros(3, 7, 4))
assert output_shape == tuple(out.shape), "output: (N, L, D*H_out)"
assert h_n_shape == tuple(last.shape), "h_n: (D*num_layers, N, H_out) - batch_first!"
print("✔")

# %% [markdown] lang="ko"
# ## 3. 실습 노트의 코드
#
# `" seoul is the capital of south kore"`를 입력으로 넣어 RNN의 출력이
# `"seoul is the capital of south korea"`가 되게 합니다. 출력을 `nn.Linear`로 사전 크기로
# 바꾸고, CrossEntropyLoss로 정답 글자의 확률을 최대화합니다.
#
# 노트와 두 가지가 다릅니다. (1) 노트의 `list(set(sentence))`는 실행할 때마다(Python의 hash
# seed에 따라) 순서가 바뀌어 결과를 재현할 수 없으므로 `sorted(set(...))`를 씁니다.
# (2) `outputs.data.numpy()`는 GPU에서 실패하므로 `.cpu()`를 먼저 부릅니다.

# %% [markdown] lang="en"
# ## 3. The code of the lab notes
#
# Feed `" seoul is the capital of south kore"` so that the RNN's output becomes
# `"seoul is the capital of south korea"`: a `nn.Linear` maps each output to the vocabulary,
# and CrossEntropyLoss maximises the probability of the right next character.
#
# Two changes from the notes: (1) the notes' `list(set(sentence))` changes order from run to
# run (with Python's hash seed), so their results cannot be repeated; we use
# `sorted(set(...))`. (2) `outputs.data.numpy()` fails on a GPU, so `.cpu()` comes first.

# %%
torch.manual_seed(0)

sentence = " seoul is the capital of south korea"
# ko: 노트는 list(set(sentence)): 실행할 때마다 순서가 바뀝니다
# en: the notes have list(set(sentence)): its order changes from run to run
char_set = sorted(set(sentence))
char_dic = {c: i for i, c in enumerate(char_set)}

vocab_sz = len(char_dic)
hidden_sz = len(char_dic)
input_sz = len(char_dic)

sen_idx = [char_dic[c] for c in sentence]
x_idx = sen_idx[:-1]
x_one_hot = [[np.eye(vocab_sz)[x] for x in x_idx]]
y_data = [sen_idx[1:]]

x_train = torch.FloatTensor(np.array(x_one_hot))
y_train = torch.LongTensor(y_data)
print("x_train:", tuple(x_train.shape), " y_train:", tuple(y_train.shape))


# %%
class Rnn(nn.Module):
    def __init__(self, input_size, hidden_size, vocab_size):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.vocab_size = vocab_size
        self.rnn = nn.RNN(
            input_size=self.input_size, hidden_size=self.hidden_size, batch_first=True
        )
        self.linear = nn.Linear(self.hidden_size, self.vocab_size)

    def forward(self, x):
        outputs, _ = self.rnn(x)
        x = self.linear(outputs)
        return x


model = Rnn(input_size=input_sz, hidden_size=hidden_sz, vocab_size=vocab_sz).to(device)

# %%
criterion = torch.nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

losses = []
epochs = 500
for epoch in range(epochs):
    model.train()
    outputs = model(x_train.to(device))  # forward propagation
    # ko: 노트는 hidden_sz로 씁니다: 여기서는 vocab_sz와 같아서 동작합니다
    # en: the notes write hidden_sz: equal to vocab_sz here, which is why it works
    loss = criterion(outputs.view(-1, vocab_sz), y_train.view(-1).to(device))
    optimizer.zero_grad()
    loss.backward()  # backward propagation
    optimizer.step()  # update parameters
    losses.append(loss.item())
    result = outputs.data.cpu().numpy().argmax(axis=2)
    result_str = "".join([char_set[idx] for idx in np.squeeze(result)])
    if epoch % 50 == 0 or epoch == epochs - 1:
        print(f"epoch {epoch:3d}  loss : {loss.item():.6f} prediction : {result_str}")

# %% [markdown] lang="ko"
# ### ✏️ 연습 2
#
# 학습 전의 모델은 15개 글자 중 아무것이나 고르는 것과 비슷합니다. 그렇다면 epoch 0의 loss
# (nats 단위의 cross-entropy)는 대략 얼마일까요? `math`를 써서 식으로 적으세요.

# %% [markdown] lang="en"
# ### ✏️ Exercise 2
#
# Before training, the model is about as good as picking any of the 15 characters at random.
# So what should the loss at epoch 0 be (cross-entropy, in nats)? Write it as a formula with
# `math`.

# %% tags=["exercise"]
expected_first_loss = math.log(vocab_sz)  # solution

assert abs(losses[0] - expected_first_loss) < 0.2, "uniform over V characters: -ln(1/V)"
assert result_str == sentence[1:], "500 epochs are enough to learn the sentence"
print(f"✔ epoch 0: {losses[0]:.3f} nats ≈ {expected_first_loss:.3f}")

# %% [markdown] lang="ko"
# ## 4. 같은 실습을 `nextchar.lab()`으로
#
# `nextchar.lab()`은 같은 실험(one-hot, `nn.RNN` + `nn.Linear`, Adam lr 1e-3, 500 epoch,
# seed 0)을 실행하고, 예측에서 틀린 글자를 표시해서 보여 줍니다. 명령줄에서는 `nextchar lab`과
# 같습니다.

# %% [markdown] lang="en"
# ## 4. The same lab with `nextchar.lab()`
#
# `nextchar.lab()` runs the same experiment (one-hot, `nn.RNN` + `nn.Linear`, Adam lr 1e-3,
# 500 epochs, seed 0) and marks each wrong character of a prediction. On the command line it
# is `nextchar lab`.

# %%
result = nextchar.lab()
result

# %% [markdown] lang="ko"
# `print(result)`는 `nextchar lab` 명령과 같은 글을 출력합니다. 다른 셀(`cell="lstm"`,
# `"gru"`)과 다른 문장도 됩니다. 한국어 문장도 글자 단위로 그대로 배웁니다.

# %% [markdown] lang="en"
# `print(result)` prints what the `nextchar lab` command prints. Other cells (`cell="lstm"`,
# `"gru"`) and other sentences work too, Korean included, one character at a time.

# %% [markdown] lang="ko"
# 같은 seed, 같은 계산이므로 위에서 직접 학습한 loss와 숫자까지 같습니다.

# %% [markdown] lang="en"
# Same seed, same computation: the losses are those of the loop above, to the digit.

# %%
for step in result.steps:
    assert abs(step.loss - losses[step.epoch]) < 1e-4, (step.epoch, step.loss, losses[step.epoch])
print(result)

# %% [markdown] lang="ko"
# ### ✏️ 연습 3
#
# `" 서울은 대한민국의 수도이다"`를 배우게 하고, 예측이 처음으로 정답과 같아진 epoch를
# 구하세요.

# %% [markdown] lang="en"
# ### ✏️ Exercise 3
#
# Have the lab learn `" 서울은 대한민국의 수도이다"`, and find the first epoch at which the
# prediction equals the target.

# %% tags=["exercise"]
korean = nextchar.lab(" 서울은 대한민국의 수도이다")  # solution
first = korean.first_match_epoch  # solution

assert korean.target == "서울은 대한민국의 수도이다"
assert korean.converged and first is not None and first < 500
print(f"✔ first equal at epoch {first}")
korean
