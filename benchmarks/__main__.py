"""`python -m benchmarks` (or `make bench`): every benchmark, each printing its table.

Speed targets are measured here, never asserted in tests. `ryla bench` measures a
deployed backend the same way from the terminal.
"""

from __future__ import annotations

from benchmarks import api_overhead, face_sheet


def main() -> None:
    print("== API overhead over the ComfyUI test double ==")
    api_overhead.main([])
    print()
    print("== Face consistency: a 10-image sheet at 1024x1024 ==")
    face_sheet.main([])


if __name__ == "__main__":
    main()
