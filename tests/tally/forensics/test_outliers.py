"""Robust within-district outliers: planted ones flagged with q < 0.05, clean control quiet."""

from __future__ import annotations

import numpy as np

from tally.forensics.outliers import (
    group_for_stations,
    group_sizes,
    high_turnout_unanimity,
    outlier_test,
    robust_p,
    robust_z,
)


def districts(n_d: int, per: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    district = np.repeat([f"d{i}" for i in range(n_d)], per)
    region = np.repeat([f"r{i // 10}" for i in range(n_d)], per)
    centre_t = np.repeat(rng.uniform(0.4, 0.7, n_d), per)
    centre_s = np.repeat(rng.uniform(0.4, 0.7, n_d), per)
    turnout = rng.normal(centre_t, 0.04)
    share = rng.normal(centre_s, 0.05)
    return district, region, turnout, share


def test_robust_z_known_answer() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    z = robust_z(x, np.zeros(5, dtype=np.int64))
    # median 3, MAD 1 -> spread 1.4826
    np.testing.assert_allclose(z, (x - 3) / 1.4826)
    assert np.isnan(robust_z(np.array([1.0, 1.0]), np.zeros(2, dtype=np.int64))).all()


def test_small_district_falls_back_to_region_then_election() -> None:
    district = np.array(["a"] * 12 + ["b"] * 3 + ["c"] * 2)
    region = np.array(["R"] * 15 + ["S"] * 2)
    usable = np.ones(17, dtype=bool)
    _, level = group_for_stations(usable, district, region)
    assert level[:12].tolist() == ["district"] * 12
    assert level[12:15].tolist() == ["region"] * 3
    assert level[15:].tolist() == ["election"] * 2


def test_clean_control_flags_few_and_planted_flagged() -> None:
    district, region, turnout, share = districts(200, 50, 1)
    usable = np.ones(turnout.size, dtype=bool)
    t_res, s_res = outlier_test(turnout, share, district, region, usable, usable)
    # FDR control: under the complete null, any flag at all has probability <= ~0.05.
    assert t_res.flagged.sum() + s_res.flagged.sum() <= 2
    planted = np.arange(25, turnout.size, 400)
    turnout2 = turnout.copy()
    turnout2[planted] = np.minimum(turnout2[planted] + 0.35, 0.999)
    share2 = share.copy()
    share2[planted] = np.minimum(share2[planted] + 0.4, 0.999)
    t_res, s_res = outlier_test(turnout2, share2, district, region, usable, usable)
    assert t_res.flagged[planted].all() and s_res.flagged[planted].all()
    assert (t_res.q[planted] < 0.05).all() and (t_res.z[planted] > 0).all()
    # With true outliers present BH's threshold rises; the t null keeps the clean stations
    # that cross it to a handful of 20,000 tests.
    assert t_res.flagged.sum() - planted.size <= 3


def test_null_is_calibrated_for_small_and_large_groups() -> None:
    """Robust z of normal groups: p < alpha happens about alpha of the time at every size.

    A standard-normal p-value fails this badly for 10-station groups (rate ~ 20x alpha at
    1e-3), which is what flagged clean rural stations in small districts.
    """
    rng = np.random.default_rng(7)
    for n in (10, 30, 100):
        groups = 200_000 // n
        x = rng.normal(size=groups * n)
        group = np.repeat(np.arange(groups), n)
        z = robust_z(x, group)
        p = robust_p(z, group_sizes(group))
        for alpha in (1e-2, 1e-3):
            rate = float(np.mean(p < alpha))
            assert 0.6 * alpha <= rate <= 1.5 * alpha, (n, alpha, rate)


def test_small_groups_of_clean_stations_stay_quiet() -> None:
    district, region, turnout, share = districts(500, 10, 3)
    usable = np.ones(turnout.size, dtype=bool)
    t_res, s_res = outlier_test(turnout, share, district, region, usable, usable)
    assert (t_res.group_size == 10).all()
    assert t_res.flagged.sum() + s_res.flagged.sum() <= 1


def test_group_sizes_count_members_only() -> None:
    assert group_sizes(np.array([0, 0, -1, 1, 0])).tolist() == [3, 3, 0, 1, 3]
    assert group_sizes(np.array([-1, -1])).tolist() == [0, 0]


def test_unusable_never_tested() -> None:
    district, region, turnout, share = districts(3, 20, 2)
    usable = np.ones(turnout.size, dtype=bool)
    usable[:5] = False
    t_res, _ = outlier_test(turnout, share, district, region, usable, usable)
    assert np.isnan(t_res.p[:5]).all() and not t_res.flagged[:5].any()


def test_high_turnout_unanimity() -> None:
    reg = np.array([1000, 1000, 50, 1000, -1])
    t = np.array([0.97, 0.97, 0.99, 0.9, 0.99])
    s = np.array([0.96, 0.9, 0.99, 0.99, np.nan])
    assert high_turnout_unanimity(reg, t, s).tolist() == [True, False, False, False, False]
