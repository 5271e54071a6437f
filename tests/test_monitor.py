from gankit.monitor import Monitor


def test_d_wins_alarm_needs_a_streak_and_fires_once_until_cleared():
    monitor = Monitor(patience=3)
    rows = [{"step": s, "d_accuracy": a} for s, a in enumerate([0.995, 0.999, 0.992, 0.999, 0.5, 0.999, 0.999, 0.999])]
    fired = [bool(monitor.on_log(r)) for r in rows]
    assert fired == [False, False, True, False, False, False, False, True]


def test_coverage_collapse_and_fid_rising_alarms():
    monitor = Monitor(patience=3)
    assert monitor.on_eval(1, {"fid": 10.0, "coverage": 0.8}) == []
    assert monitor.on_eval(2, {"fid": 11.0, "coverage": 0.7}) == []
    assert monitor.on_eval(3, {"fid": 12.0, "coverage": 0.6}) == []
    alarms = monitor.on_eval(4, {"fid": 13.0, "coverage": 0.3})
    assert any("coverage fell to 0.300 (best 0.800)" in a for a in alarms)
    assert any("FID has risen 3 evaluations in a row" in a for a in alarms)
    assert monitor.on_eval(5, {"fid": 9.0, "coverage": 0.8}) == []
