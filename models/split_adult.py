"""Splits the Adult training file into two CSV files of shuffled rows, for tuning on a
validation split that never touches the test file (models/sweep.sh, models/explore.sh).

    python3 models/split_adult.py SEED SHARE FIRST.csv SECOND.csv

SHARE of the rows (shuffled with random.Random(SEED)) go to FIRST, the rest to SECOND; both keep
the header.
"""
import gzip
import random
import sys


def main() -> None:
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    seed, share, first, second = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
    lines = gzip.open("data/adult/adult.data.csv.gz", "rt").read().splitlines()
    header, rows = lines[0], [line for line in lines[1:] if line.strip()]
    random.Random(seed).shuffle(rows)
    cut = int(len(rows) * share)
    for name, part in ((first, rows[:cut]), (second, rows[cut:])):
        with open(name, "w") as f:
            f.write("\n".join([header] + part) + "\n")


if __name__ == "__main__":
    main()
