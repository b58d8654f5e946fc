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
# # 03. 단어 예측: one-hot 대신 word2vec
#
# 글자 대신 **단어** 단위로 다음 단어를 예측할 수도 있습니다. 하지만 단어를 one-hot으로
# 표현하면
#
# - 사전(vocab)의 단어 수만큼 차원이 필요해서 너무 크고 비효율적이고,
# - one-hot 벡터 자체에는 단어의 의미가 없습니다: 서로 다른 두 단어는 언제나 똑같이 떨어져
#   있습니다.
#
# 그래서 word2vec 같은 **word embedding**을 씁니다. 이 노트북에서는 내장 말뭉치
# `shakespeare`(셰익스피어 희곡 37편, 인터넷 없이 동작)로
#
# 1. one-hot 단어 벡터의 문제를 숫자로 확인하고,
# 2. gensim으로 word2vec을 학습해서 비슷한 단어를 찾고,
# 3. 그 벡터로 시작하는 단어 단위 LSTM을 학습해 다음 단어를 예측합니다.
#
# 필요한 패키지: `pip install "nextchar[word2vec]"` (gensim).

# %% [markdown] lang="en"
# # 03. Word prediction: word2vec instead of one-hot
#
# A model can predict the next **word** instead of the next character. But as one-hot
# vectors, words
#
# - need one dimension per word of the vocabulary: far too many, and wasteful;
# - carry no meaning: any two distinct words are exactly as far apart as any other two.
#
# So words are fed as **word embeddings** such as word2vec's. With the built-in corpus
# `shakespeare` (37 plays, no internet needed) this notebook
#
# 1. shows the trouble with one-hot word vectors in numbers,
# 2. trains word2vec with gensim and finds similar words,
# 3. trains a word-level LSTM that starts from those vectors, and predicts the next word.
#
# Needs `pip install "nextchar[word2vec]"` (gensim).

# %%
from pathlib import Path

import gensim
import numpy as np

import nextchar
from nextchar.core.config import model_config
from nextchar.models import build_model, count_parameters
from nextchar.text.data import read_text
from nextchar.text.embeddings import nearest, stable_hash
from nextchar.text.tokenizers import WordTokenizer

text = read_text("shakespeare")
words = WordTokenizer(["<unk>"]).split_words(text)
print(f"{len(text):,} characters, {len(words):,} words; the first 12: {words[:12]}")

# %% [markdown] lang="ko"
# ## 1. one-hot 단어 벡터
#
# 두 번 이상 나오는 단어만 사전에 넣어도 만 개가 넘습니다. one-hot 벡터는 그만큼의 차원을
# 가지고, 서로 다른 두 단어의 코사인 유사도는 언제나 0입니다.

# %% [markdown] lang="en"
# ## 1. One-hot word vectors
#
# Even keeping only the words that occur at least twice, the vocabulary has over ten thousand
# words. A one-hot vector has that many dimensions, and the cosine similarity of any two
# distinct words is 0.

# %%
tokenizer = WordTokenizer.build(text, min_freq=2)
V = tokenizer.vocab_size
king, prince = np.eye(V)[tokenizer.token_id("king")], np.eye(V)[tokenizer.token_id("prince")]
print(f"vocabulary: {V:,} words -> one-hot vectors of {V:,} dimensions")

# %% [markdown] lang="ko"
# ### ✏️ 연습 1
#
# one-hot 벡터 `king`과 `prince`의 코사인 유사도 $\frac{a \cdot b}{\lVert a \rVert
# \lVert b \rVert}$를 numpy로 계산하세요.

# %% [markdown] lang="en"
# ### ✏️ Exercise 1
#
# Compute the cosine similarity $\frac{a \cdot b}{\lVert a \rVert \lVert b \rVert}$ of the
# one-hot vectors `king` and `prince` with numpy.

# %% tags=["exercise"]
cosine = king @ prince / (np.linalg.norm(king) * np.linalg.norm(prince))  # solution

assert cosine == 0.0, "distinct one-hot vectors are orthogonal"
print("✔ cosine =", cosine)

# %% [markdown] lang="ko"
# ## 2. word2vec
#
# word2vec(skip-gram)은 각 단어로 그 주변(앞뒤 5단어)의 단어를 예측하도록 64차원 벡터를
# 학습합니다. 비슷한 문맥에 나오는 단어는 비슷한 벡터를 갖게 됩니다. gensim은 worker 1개와
# 고정된 hash 함수일 때만 결과가 재현되므로 그렇게 설정합니다 (2코어 CPU에서 약 20초).

# %% [markdown] lang="en"
# ## 2. word2vec
#
# word2vec (skip-gram) learns a 64-dimensional vector per word by predicting the words
# around it (5 on each side). Words used in similar contexts get similar vectors. gensim is
# repeatable only with one worker and a fixed hash function, so that is how it runs here
# (about 20 seconds on 2 CPU cores).

# %%
sentences, line = [], []
for w in words:
    if w == "\n":
        if line:
            sentences.append(line)
        line = []
    else:
        line.append(w)

w2v = gensim.models.Word2Vec(
    sentences, vector_size=64, window=5, min_count=2, sg=1, epochs=5, workers=1, seed=0,
    hashfxn=stable_hash,
)  # fmt: skip
vectors = w2v.wv
for word, similarity in vectors.most_similar("king", topn=8):
    print(f"  {word:10} {similarity:+.3f}")

# %% [markdown] lang="ko"
# 아무도 모델에게 *king*이 *prince*, *duke*, *queen*과 비슷하다고 알려 주지 않았습니다.
# 문맥에서 읽어 낸 것입니다.
#
# ### ✏️ 연습 2
#
# `vectors["king"]`, `vectors["prince"]`로 코사인 유사도를 직접 계산하고 gensim의
# `vectors.similarity`와 같은지 확인하세요.

# %% [markdown] lang="en"
# Nobody told the model that *king* is like *prince*, *duke* or *queen*: it read that off
# the contexts.
#
# ### ✏️ Exercise 2
#
# Compute the cosine similarity of `vectors["king"]` and `vectors["prince"]` yourself and
# check it against gensim's `vectors.similarity`.

# %% tags=["exercise"]
a, b = vectors["king"], vectors["prince"]
by_hand = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))  # solution

assert abs(by_hand - vectors.similarity("king", "prince")) < 1e-5
assert vectors.similarity("king", "prince") > vectors.similarity("king", "water") + 0.2
assert vectors.similarity("day", "night") > vectors.similarity("day", "horse")
water = vectors.similarity("king", "water")
print(f"✔ cos(king, prince) = {by_hand:.3f}, cos(king, water) = {water:.3f}")

# %% [markdown] lang="ko"
# ## 3. 단어 단위 LSTM
#
# 이 벡터를 파일로 저장하고, `nextchar.train`에 `embeddings=`로 주면 LSTM의 embedding 층이
# word2vec 벡터로 시작합니다 (`level="word"`: LSTM 1 × 256, 단어 단위). 명령줄에서는
# `nextchar train shakespeare --level word --embeddings word2vec`입니다. 여기서는 1분 안에
# 끝나도록 60 step만 학습합니다 (README에는 8분 학습한 결과가 있습니다).

# %% [markdown] lang="en"
# ## 3. A word-level LSTM
#
# Saved to a file and given to `nextchar.train` as `embeddings=`, these vectors become the
# LSTM's starting embedding (`level="word"`: an LSTM 1 × 256 over words). On the command line:
# `nextchar train shakespeare --level word --embeddings word2vec`. Here it trains for 60 steps
# to stay within a minute (README shows an 8-minute run).

# %%
Path("runs").mkdir(exist_ok=True)
vectors.save("runs/shakespeare-w2v.kv")
words_run = nextchar.train(
    "shakespeare:train", level="word", embeddings="runs/shakespeare-w2v.kv", embedding_dim=64,
    max_steps=60, eval_every=60, val_fraction=0.02, progress=False,
)  # fmt: skip
words_run

# %%
model = nextchar.load(words_run)  # its run directory: runs/shakespeare-train (numbered if taken)
model.predict("the king of", k=8)

# %%
for word, similarity in nearest(model.model, model.tokenizer, "king", 8).neighbours:
    print(f"  {word:10} {similarity:+.3f}")
print(model.sample("KING HENRY:", length=40, temperature=0.8, seed=1))

# %% [markdown] lang="ko"
# ### ✏️ 연습 3
#
# 입력을 one-hot으로 넣는 모델과 64차원 embedding으로 넣는 모델(둘 다 LSTM 1 × 256, 같은
# 사전)의 파라미터 수를 비교하세요. 입력 층만 다르므로, 그 차이는
# $4 \cdot 256 \cdot V$ (one-hot이 LSTM에 바로 들어감) 대
# $64 V + 4 \cdot 256 \cdot 64$ (embedding 표 + LSTM)입니다.

# %% [markdown] lang="en"
# ### ✏️ Exercise 3
#
# Compare the parameters of a model fed one-hot words with one fed 64-dimensional embeddings
# (both an LSTM 1 × 256 over the same vocabulary). Only the input layer differs:
# $4 \cdot 256 \cdot V$ (the one-hot vector goes straight into the LSTM) against
# $64 V + 4 \cdot 256 \cdot 64$ (the embedding table, then the LSTM).

# %% tags=["exercise"]
V = model.tokenizer.vocab_size
difference = 4 * 256 * V - (64 * V + 4 * 256 * 64)  # solution

shape = {"vocab_size": V, "cell": "lstm", "hidden_size": 256, "num_layers": 1}
onehot = count_parameters(build_model(model_config(**shape, input="onehot")))
embedded = count_parameters(build_model(model_config(**shape, embedding_dim=64)))
assert difference == onehot - embedded
print(f"✔ one-hot {onehot:,} parameters, embedding {embedded:,}: {onehot / embedded:.1f}x")
