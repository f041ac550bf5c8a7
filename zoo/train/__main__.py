"""``python -m zoo.train``: see :mod:`zoo.train.command`."""

from zoo.train.command import main

if __name__ == "__main__":
    raise SystemExit(main())
