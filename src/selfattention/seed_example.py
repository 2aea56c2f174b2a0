"""The seed article's section-5 TensorFlow example, reproduced faithfully, and its correction.

:func:`run_seed_code` executes the article's code line for line (its comments translated) and
returns every intermediate tensor under the article's own variable name, so the book can show
where each line goes wrong. :func:`corrected` computes what the code set out to compute:
self-attention over the same five embeddings, ``softmax(E E^T / sqrt(d)) E``.
"""

from __future__ import annotations

import numpy as np

from .fast import scaled_dot_product_attention

# The article's code as printed (section 5), for display in the book.
SEED_SOURCE = """\
import tensorflow as tf

# 定义输入序列
input_sequence = [1, 2, 3, 4, 5]

# 定义单词嵌入向量
embedding_matrix = tf.constant([[1.0, 2.0], [2.0, 3.0], [3.0, 4.0], [4.0, 5.0], [5.0, 6.0]])

# 计算相关性得分矩阵
score_matrix = tf.matmul(embedding_matrix, embedding_matrix, transpose_b=True)

# 使用softmax函数对相关性得分矩阵进行归一化
softmax_matrix = tf.nn.softmax(score_matrix)

# 计算单词对之间的权重
attention_weights = tf.matmul(score_matrix, softmax_matrix)

# 使用权重矩阵和单词嵌入向量相乘来计算单词对之间的加权平均
weighted_sum = tf.matmul(attention_weights, embedding_matrix)

# 使用权重矩阵和单词嵌入向量相加来计算单词对之间的加权和
context_vector = tf.reduce_sum(weighted_sum, axis=1)

print(context_vector)
"""

EMBEDDINGS = np.array([[1.0, 2.0], [2.0, 3.0], [3.0, 4.0], [4.0, 5.0], [5.0, 6.0]], np.float32)


def run_seed_code() -> dict[str, np.ndarray]:
    """Run the article's code unchanged and return its variables as NumPy arrays.

    Returns a dict with the keys `input_sequence`, `embedding_matrix` `(5, 2)`,
    `score_matrix` `(5, 5)`, `softmax_matrix` `(5, 5)`, `attention_weights` `(5, 5)`,
    `weighted_sum` `(5, 2)` and `context_vector` `(5,)`.
    """
    import tensorflow as tf

    # Define the input sequence (never used again by the article)
    input_sequence = [1, 2, 3, 4, 5]
    # Define the word embeddings
    embedding_matrix = tf.constant(EMBEDDINGS.tolist())
    # Compute the score matrix (no 1/sqrt(d_k) scaling)
    score_matrix = tf.matmul(embedding_matrix, embedding_matrix, transpose_b=True)
    # Normalise the score matrix with softmax (over the last axis: rows)
    softmax_matrix = tf.nn.softmax(score_matrix)
    # "Compute the weights between word pairs": scores times weights (a spurious step)
    attention_weights = tf.matmul(score_matrix, softmax_matrix)
    # "Weighted average": (wrong) weights times embeddings
    weighted_sum = tf.matmul(attention_weights, embedding_matrix)
    # "Weighted sum": sums each word's features into one number
    context_vector = tf.reduce_sum(weighted_sum, axis=1)

    values = {
        "embedding_matrix": embedding_matrix,
        "score_matrix": score_matrix,
        "softmax_matrix": softmax_matrix,
        "attention_weights": attention_weights,
        "weighted_sum": weighted_sum,
        "context_vector": context_vector,
    }
    return {"input_sequence": np.array(input_sequence)} | {
        name: tensor.numpy() for name, tensor in values.items()
    }


def corrected(embeddings: np.ndarray = EMBEDDINGS) -> dict[str, np.ndarray]:
    """Self-attention over `embeddings` `(T, d)` with Q = K = V = the embeddings.

    Returns a dict with `scores` `(T, T)` (already divided by `sqrt(d)`), `weights` `(T, T)`
    (rows sum to 1) and `context` `(T, d)`, one context vector per word.
    """
    embeddings = np.asarray(embeddings)
    d = embeddings.shape[-1]
    scores = embeddings @ embeddings.T / np.sqrt(d)  # (T, T)
    context, weights = scaled_dot_product_attention(embeddings, embeddings, embeddings)
    return {"scores": scores, "weights": weights, "context": context}
