"""`seqkit shortlist`: a trained model's vocabulary shortlist, for `translate --shortlist`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from seqkit.cli import ModelDirArgument, _Command, app, user_errors
from seqkit.decoding.shortlist import FREQUENT, TRANSLATIONS


@app.command(cls=_Command)
@user_errors
def shortlist(
    model_dir: ModelDirArgument,
    train: Annotated[
        str | None,
        typer.Option(
            metavar="PREFIX",
            help="Training data to build from (as data.train). Default: the model's data.train.",
        ),
    ] = None,
    translations: Annotated[
        int,
        typer.Option(
            metavar="K",
            help="Target pieces kept per source piece (IBM Model 1 alignment); at most the target vocabulary.",
        ),
    ] = TRANSLATIONS,
    frequent: Annotated[
        int, typer.Option(metavar="N", help="Most frequent target pieces always kept.")
    ] = FREQUENT,
) -> None:
    """Build MODEL_DIR/shortlist.npz, the likely output pieces of each source piece, for `translate
    --shortlist` (training builds it too; this is for models trained before, or other data)."""
    from seqkit.export import runtime

    runtime.refuse(model_dir)  # (before torch is imported: without it, this is what a user needs to hear)
    from seqkit.training.seq2seq import build_shortlist

    built = build_shortlist(model_dir, train, translations, frequent)
    print(
        f"wrote {model_dir / 'shortlist.npz'}: {built.translations.shape[1]} translations per source piece, "
        f"{len(built.frequent)} frequent pieces",
        file=sys.stderr,
    )
