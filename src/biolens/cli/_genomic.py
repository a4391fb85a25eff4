"""CLI helpers shared by ``train --intervals``, ``variants`` and ``scan``: contig aliases and contig lists."""

from __future__ import annotations

from biolens.errors import ConfigError


def parse_aliases(items: list[str] | None) -> dict[str, str]:
    """``["Chromosome=NC_000913.3", …]`` → ``{"Chromosome": "NC_000913.3"}``."""
    out: dict[str, str] = {}
    for item in items or []:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise ConfigError(f"--chrom-alias {item!r}: expected NAME_IN_FILE=GENOME_NAME, e.g. "
                              "--chrom-alias Chromosome=NC_000913.3")
        out[old.strip()] = new.strip()
    return out


def split_names(items: list[str] | None) -> list[str] | None:
    """Repeated and/or comma-separated contig names (``--test-chroms chr8,chr9``); None when not given."""
    if not items:
        return None
    return [name.strip() for item in items for name in item.split(",") if name.strip()]
