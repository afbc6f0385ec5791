"""A small passing suite: what the scripted `honest` agent really runs with `python -m pytest -q`."""


def test_addition():
    assert 2 + 3 == 5


def test_multiplication():
    assert 6 * 7 == 42


def test_integer_division():
    assert divmod(17, 5) == (3, 2)
