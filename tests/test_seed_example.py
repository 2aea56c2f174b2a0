"""The seed article's example: faithful reproduction, and the numbers that show its errors."""

import numpy as np

import selfattention as sa
from selfattention import seed_example


def test_seed_code_is_reproduced_faithfully():
    got = seed_example.run_seed_code()
    e = np.array([[1, 2], [2, 3], [3, 4], [4, 5], [5, 6]], np.float64)
    scores = e @ e.T
    soft = np.exp(scores - scores.max(1, keepdims=True))
    soft /= soft.sum(1, keepdims=True)
    expected_context = (scores @ soft @ e).sum(axis=1)
    np.testing.assert_allclose(got["score_matrix"], scores)
    np.testing.assert_allclose(got["softmax_matrix"], soft, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got["context_vector"], expected_context, rtol=1e-5)
    assert got["context_vector"].shape == (5,)  # five numbers, not five vectors
    assert got["score_matrix"][4, 4] == 61.0  # 5*5 + 6*6, unscaled


def test_seed_weights_do_not_sum_to_one_but_corrected_ones_do():
    got = seed_example.run_seed_code()
    assert got["attention_weights"].sum(axis=1).min() > 5  # not a distribution
    fixed = seed_example.corrected()
    np.testing.assert_allclose(fixed["weights"].sum(axis=1), 1, rtol=1e-6)
    assert fixed["context"].shape == (5, 2)
    out, _ = sa.scaled_dot_product_attention(
        seed_example.EMBEDDINGS, seed_example.EMBEDDINGS, seed_example.EMBEDDINGS
    )
    np.testing.assert_array_equal(fixed["context"], out)


def test_seed_source_is_the_code_that_runs():
    namespace = {}
    exec(seed_example.SEED_SOURCE.replace("print(context_vector)", ""), namespace)  # noqa: S102
    np.testing.assert_array_equal(
        namespace["context_vector"].numpy(), seed_example.run_seed_code()["context_vector"]
    )
