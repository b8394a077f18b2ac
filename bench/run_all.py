"""`make bench`: every row of the speed table against emulators on loopback, then
bench/results.json and bench/results.md. Usage: uv run python -m bench.run_all [--quick]"""

from __future__ import annotations

import argparse
import asyncio

from bench import results, rows_faults, rows_request, rows_startup, ui_first_step


async def measure(quick: bool) -> list[results.Row]:
    n = 60 if quick else 300
    rows = await rows_request.overhead_rows(n)
    rows.append(await rows_request.validate_warm_row(n))
    rows += rows_startup.startup_rows(3 if quick else 7)
    rows.append(await rows_request.throughput_row(100 if quick else 300))
    rows += await rows_faults.fault_rows(20 if quick else 60)
    rows.append(await rows_request.first_token_row(n // 2))
    rows.append(await rows_request.growth_row(n // 3))
    rows.append(await asyncio.to_thread(ui_first_step.ui_first_step_row, 5 if quick else 20))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer runs: a smoke test of the harness")
    rows = asyncio.run(measure(parser.parse_args().quick))
    results.write(rows)
    print(results.markdown(rows, results.machine()))


if __name__ == "__main__":
    main()
