"""Run the ``conveyor`` CLI in this interpreter, for ``python -X importtime`` and cProfile.

python -m cProfile -o prof.out bench/conveyor_entry.py run -j 2
"""

from conveyor.cli.main import main

if __name__ == "__main__":
    main()
