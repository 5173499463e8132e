"""How a global batch is split across processes, and how their results add up to the global one.

A global batch of n rows is split into ``world_size`` contiguous shards whose sizes differ by at
most one (the first ``n % world_size`` ranks take one row more); with n < world_size the last
ranks get none. Rank r's batch-mean gradient g_r, weighted by its share n_r / n, sums over the
ranks to the batch-mean gradient of the whole batch:

    sum_r (n_r / n) * g_r = sum_r (n_r / n) * (1 / n_r) * sum_{i in shard r} g_i
                          = (1 / n) * sum_i g_i

so an unequal last batch is averaged exactly. A term every rank adds to its g_r (the
regularizers' gradient) would be counted sum_r (n_r / n) = 1 time, but tinynn's data-parallel step
scales the output gradient instead of the whole gradient buffer, so only rank 0 adds it.
"""

from __future__ import annotations

from ..errors import ArgumentError


def shard_rows(num_rows: int, world_size: int, rank: int) -> slice:
    """The rows of a global batch of ``num_rows`` that process ``rank`` of ``world_size``
    computes: a contiguous slice, possibly empty (``num_rows < world_size``)."""
    if world_size < 1 or not 0 <= rank < world_size or num_rows < 0:
        raise ArgumentError(f"shard_rows expected num_rows >= 0 and 0 <= rank < world_size, got "
                            f"num_rows={num_rows}, world_size={world_size}, rank={rank}")
    base, extra = divmod(num_rows, world_size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def shard_sizes(num_rows: int, world_size: int) -> list[int]:
    """Rows of each rank's shard, rank 0 first; they sum to ``num_rows``."""
    return [_length(shard_rows(num_rows, world_size, rank)) for rank in range(world_size)]


def shard_weight(num_rows: int, world_size: int, rank: int) -> float:
    """Rank ``rank``'s share of the global batch, n_r / n: the factor on its batch-mean values
    before they are summed over the ranks."""
    return _length(shard_rows(num_rows, world_size, rank)) / num_rows


def _length(rows: slice) -> int:
    return rows.stop - rows.start
