#!/usr/bin/env python
"""Train and evaluate one configuration: a thin wrapper over hgraph.pipeline.run.

Run `python pipelines/run.py --help` for every option.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hgraph.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
