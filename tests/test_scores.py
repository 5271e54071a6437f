import numpy as np
import pytest
import scipy.linalg

from gankit.metrics.scores import (
    feature_statistics,
    fid,
    frechet_distance,
    inception_score,
    kid,
    label_accuracy,
    class_histogram_scores,
    intra_fid,
    matched_accuracy,
    mode_scores,
    prdc,
)

rng = np.random.default_rng(0)


def test_fid_of_a_set_with_itself_is_zero():
    x = rng.standard_normal((500, 16))
    assert fid(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_matches_scipy_sqrtm_for_full_covariances():
    a, b = rng.standard_normal((8, 8)), rng.standard_normal((8, 8))
    s1, s2 = a @ a.T + np.eye(8), b @ b.T + np.eye(8)
    mu1, mu2 = rng.standard_normal(8), rng.standard_normal(8)
    reference = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)


def test_sample_fid_approaches_the_population_value():
    x = rng.standard_normal((20000, 4))
    y = 2.0 * rng.standard_normal((20000, 4)) + 1.0  # N(1, 4 I)
    expected = 4 * 1.0 + 4 * (1 + 4 - 2 * 2)
    assert fid(x, y) == pytest.approx(expected, rel=0.05)
    mu, sigma = feature_statistics(y)
    assert sigma.shape == (4, 4) and mu == pytest.approx(np.ones(4), abs=0.05)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    x, y = rng.standard_normal((2000, 32)), rng.standard_normal((2000, 32))
    same, same_std = kid(x, y, subsets=20, subset_size=500)
    different, _ = kid(x, y + 0.5, subsets=20, subset_size=500)
    assert abs(same) < 3 * same_std + 1e-3
    assert different > 0.1 > abs(same)


def test_inception_score_bounds():
    assert inception_score(np.zeros((100, 10)), splits=10)[0] == pytest.approx(1.0)
    confident = np.full((1000, 10), -50.0)
    confident[np.arange(1000), np.arange(1000) % 10] = 50.0  # sure of its class, classes balanced
    assert inception_score(confident, splits=10)[0] == pytest.approx(10.0, rel=1e-6)


def test_prdc_on_the_naeem_gaussian_example():
    """Naeem et al. 2020 (their prdc package's example): real and fake N(0, I) in 1000-d, 10k each, k = 5,
    giving P 0.4772, R 0.4705, D 1.0555, C 0.9735. Density's draw-to-draw spread is large here
    (0.98-1.10 over seeds 0-3 with this code, which matches a float64 brute force of the published
    formulas); its expectation for identical distributions is exactly 1."""
    draw = np.random.default_rng(0)
    real = draw.standard_normal((10000, 1000), dtype=np.float32)
    fake = draw.standard_normal((10000, 1000), dtype=np.float32)
    scores = prdc(real, fake, k_pr=5, k_dc=5)
    assert scores["precision"] == pytest.approx(0.48, abs=0.03)
    assert scores["recall"] == pytest.approx(0.47, abs=0.03)
    assert scores["density"] == pytest.approx(1.06, abs=0.1)
    assert scores["coverage"] == pytest.approx(0.97, abs=0.02)


def test_prdc_detects_a_collapsed_generator():
    real = rng.standard_normal((1000, 8))
    collapsed = 0.05 * rng.standard_normal((1000, 8))  # all samples near one point
    scores = prdc(real, collapsed)
    assert scores["precision"] > 0.9 and scores["recall"] < 0.1 and scores["coverage"] < 0.1


def test_mode_scores_on_hand_placed_points():
    modes = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    points = np.array([[0.01, 0.0], [0.0, -0.02], [10.0, 0.02], [9.99, 0.0], [5.0, 5.0]])
    scores = mode_scores(points, modes, std=0.01)
    assert scores["modes_captured"] == 2 and scores["modes_total"] == 4
    assert scores["high_quality"] == pytest.approx(4 / 5)  # (0, -0.02) is 2 std away: kept; (5, 5) is not
    # Two of four modes with half the samples each: KL = 2 * 0.5 * log(0.5 * 4) = log 2.
    assert scores["reverse_kl"] == pytest.approx(np.log(2))
    uniform = mode_scores(modes, modes, std=0.01)
    assert uniform["modes_captured"] == 4 and uniform["reverse_kl"] == pytest.approx(0.0)


def test_label_accuracy():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    assert label_accuracy(logits, np.array([0, 1, 1])) == pytest.approx(2 / 3)


def test_class_histogram_scores_flag_a_generator_that_over_produces_one_class():
    eye = np.eye(4, dtype=np.float32)
    real = eye[np.arange(400) % 4]  # balanced: each class 1/4
    same = class_histogram_scores(real, eye[np.arange(200) % 4])
    assert same["class_kl"] == pytest.approx(0.0) and same["classes_missing"] == 0
    assert same["class_histogram"] == [0.25] * 4
    collapsed = eye[[0] * 150 + [1] * 50]  # 3/4 class 0, 1/4 class 1, none of 2 and 3
    scores = class_histogram_scores(real, collapsed)
    assert scores["max_class_share"] == pytest.approx(0.75) and scores["classes_missing"] == 2
    assert scores["class_kl"] == pytest.approx(0.75 * np.log(3) + 0.25 * np.log(1))


def test_intra_fid_sees_swapped_classes_that_overall_fid_misses():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (500, 3)), rng.normal(4, 1, (500, 3))
    real, labels = np.concatenate([a, b]), np.repeat([0, 1], 500)
    fake_a, fake_b = rng.normal(0, 1, (500, 3)), rng.normal(4, 1, (500, 3))
    right = intra_fid(real, labels, np.concatenate([fake_a, fake_b]), labels)
    swapped = intra_fid(real, labels, np.concatenate([fake_b, fake_a]), labels)  # class 0 drawn where 1 belongs
    assert right["intra_fid"] < 0.1 and swapped["intra_fid"] > 40  # 3 dims x 4^2 = 48 per class
    assert len(right["intra_fid_per_class"]) == 2


def test_matched_accuracy_finds_the_best_one_to_one_matching():
    # Code 0 is mostly class 2, code 1 mostly class 0, code 2 mostly class 1: a permutation, 80% agreement.
    table = {(0, 2): 8, (0, 0): 2, (1, 0): 8, (1, 1): 2, (2, 1): 8, (2, 2): 2}
    codes = np.concatenate([[c] * n for (c, _), n in table.items()])
    classes = np.concatenate([[k] * n for (_, k), n in table.items()])
    result = matched_accuracy(codes, classes)
    assert result["code_accuracy"] == pytest.approx(24 / 30) and result["code_to_class"] == [2, 0, 1]
    # Two codes that both mean class 0 cannot both be matched to it: one-to-one, not majority vote.
    assert matched_accuracy(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0]))["code_accuracy"] == pytest.approx(0.5)


def test_fid_with_more_features_than_samples_is_the_same_number_without_d_by_d_matrices():
    from gankit.metrics.scores import feature_statistics, fid, frechet_distance, frechet_distance_from_samples

    rng = np.random.default_rng(3)
    for n1, n2, d in ((40, 60, 300), (300, 200, 40), (90, 90, 90)):
        x, y = rng.normal(size=(n1, d)), rng.normal(size=(n2, d)) * 1.3 + 0.2
        reference = frechet_distance(*feature_statistics(x), *feature_statistics(y))
        assert frechet_distance_from_samples(x, y) == pytest.approx(
            reference, rel=1e-6
        )  # the eigen route rounds the null space
        assert fid(x, y) == pytest.approx(reference, rel=1e-6)
    assert fid(x, x) == pytest.approx(0.0, abs=1e-8)


def test_kid_from_whole_kernel_matrices_matches_per_subset_kernels():
    from gankit.metrics.scores import kid

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 600)), rng.normal(size=(200, 600)) + 0.1
    r = np.random.default_rng(0)
    values = []
    for _ in range(10):
        a, b = x[r.choice(300, 100, replace=False)], y[r.choice(200, 100, replace=False)]
        k_aa, k_bb, k_ab = (a @ a.T / 600 + 1) ** 3, (b @ b.T / 600 + 1) ** 3, (a @ b.T / 600 + 1) ** 3
        values.append((k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (100 * 99) - 2 * k_ab.mean())
    assert kid(x, y, subsets=10, subset_size=100) == pytest.approx((np.mean(values), np.std(values)), rel=1e-12)
