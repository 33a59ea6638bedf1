"""seqkit from Python: `seqkit.load(model_dir)` opens a trained model directory, and the `Model` it returns
translates, scores and generates with the model's own settings unless a call says otherwise. The commands
(`seqkit translate`, `generate`, `info`) call this same code.

    import seqkit

    model = seqkit.load("runs/demo")
    for result in model.translate(["Dios es amor.", "En el principio"], beam_size=5, nbest=2):
        print(result.text, result.score, [t.text for t in result.nbest])
    print(model.score(["Dios es amor."], ["God is love."]).perplexity)

    genre = seqkit.load("runs/genre")         # a classifier (model.type = "classifier")
    print(genre.predict(["In the beginning God created the heavens"])[0].top(3))

An exported directory (`seqkit export`) loads the same way and runs with onnxruntime, without importing
torch; `score` and `precision` / `quantize` need the torch model.

Loading (loading.py) applies seqkit's process-wide memory settings (runtime/allocator.py) when torch has not
yet allocated anything in this process; importing seqkit changes no setting. What a caller hands a Model is
checked by arguments.py.
"""

from __future__ import annotations

import builtins  # (`type` is a property of Model, which hides the builtin in its annotations)
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqkit import arguments
from seqkit.config import Config, DecodeConfig, GenerateConfig
from seqkit.data.tokenizer import Tokenizer
from seqkit.decoding import settings as settings_lib
from seqkit.decoding.inference import LineNumbers, Translation
from seqkit.decoding.settings import Settings
from seqkit.errors import ConfigError

if TYPE_CHECKING:
    from seqkit.decoding.classify import Prediction


@dataclass(frozen=True)
class TranslationResult:
    """One input line's translation: the best one's text and score, and the `nbest` best, best first
    (each a `Translation`: text, score, log_prob). An empty line: text "" and no n-best."""

    text: str
    score: float | None
    nbest: tuple[Translation, ...]


@dataclass(frozen=True)
class Scores:
    """Teacher-forced log-probabilities (nats) of each target given its source (EOS included)."""

    log_probs: list[float]
    tokens: list[int]  # target tokens scored per line, EOS included

    @property
    def perplexity(self) -> float:
        from seqkit.scoring.likelihood import perplexity

        return perplexity(-sum(self.log_probs), sum(self.tokens))


_END = object()  # the end of a stream, for next()


class Model:
    """A trained model directory, loaded: what `seqkit.load` returns."""

    def __init__(
        self,
        model_dir: Path,
        cfg: Config,
        tokenizer: Tokenizer,
        module: Any,
        precision: str,
        steps: Any = None,
        export: dict | None = None,
    ):
        """`module`: the torch model (None for an export); `steps`: what the search runs (decoding/search.py),
        or a classifier's head (decoding/classify.py), by default the module's; `export`: an exported
        directory's description (export.json)."""
        self.model_dir, self.config, self.tokenizer, self.module = model_dir, cfg, tokenizer, module
        self.precision, self.export = precision, export
        # what is read later (the shortlist, info) is read here, whatever the working directory is by then;
        # messages name the directory as the caller did
        self._directory = model_dir.absolute()
        if steps is None:
            from seqkit.decoding.torch_steps import steps_of

            steps = steps_of(module)
        self.steps = steps
        self._shortlist_steps: Any = None
        # settings already checked (frozen dataclasses, by value): a stream given those of decode_settings
        # does not check them again (a whole config's checks, 7.4 ms a server request measured)
        self._checked_settings: set[DecodeConfig | GenerateConfig] = set()

    @property
    def type(self) -> str:
        """The model.type: "seq2seq" translates, "lm" generates, "classifier" predicts."""
        return self.config.model.type

    def require_task(self, task: str, command: str | None = None) -> None:
        """A ConfigError naming the command that fits when this model cannot do `task` ("translate", ...);
        `command`: the one the user ran, where it is not `task`."""
        if self.export is not None:
            from seqkit.export import runtime

            runtime.require_task(self.export, task, self.model_dir, command)
            return
        from seqkit.model_types import require_task

        require_task(self.config, task, self.model_dir, command)

    def decode_settings(self, source: str = "options", **options: Any) -> DecodeConfig:
        """The model's decoding settings with the given ones (None: the model's own) put in and checked;
        `source` names them in errors (the rules: decoding/settings.py)."""
        return self._remember(settings_lib.decode(self.config, source, options))

    def generate_settings(self, source: str = "options", **options: Any) -> GenerateConfig:
        """The model's sampling settings with the given ones put in and checked (as `decode_settings`)."""
        return self._remember(settings_lib.generate(self.config, source, options))

    def _remember(self, settings: Settings) -> Settings:
        if len(self._checked_settings) > 1000:  # (a server's requests may each ask for other settings)
            self._checked_settings.clear()
        self._checked_settings.add(settings)
        return settings

    def translate(
        self,
        lines: Iterable[str],
        *,
        beam_size: int | None = None,
        nbest: int = 1,
        length_penalty: float | None = None,
        max_length_ratio: float | None = None,
        batch_size: int | None = None,
        max_input_pieces: int | None = None,
        shortlist: bool | None = None,
        coverage_penalty: float | None = None,
        no_repeat_ngram: int | None = None,
        repetition_penalty: float | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> list[TranslationResult]:
        """One result per line, in order (the settings are DecodeConfig's; None: the model's own).
        `temperature` > 0 samples each line's output instead of searching (`top_k`, `top_p`, `seed`)."""
        settings = self.decode_settings(
            beam_size=beam_size,
            length_penalty=length_penalty,
            max_length_ratio=max_length_ratio,
            batch_size=batch_size,
            max_input_pieces=max_input_pieces,
            shortlist=shortlist,
            coverage_penalty=coverage_penalty,
            no_repeat_ngram=no_repeat_ngram,
            repetition_penalty=repetition_penalty,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
        )
        return list(self.translate_stream(lines, settings, nbest))

    def translate_stream(
        self,
        lines: Iterable[str],
        settings: DecodeConfig | None = None,
        nbest: int = 1,
        with_attention: bool = False,
        chunk_lines: int | None = None,
        numbers: LineNumbers | None = None,
    ) -> Iterator[TranslationResult]:
        """`translate` as a stream, chunk by chunk (results come before the input ends), with settings
        from `decode_settings`; `with_attention`: each Translation carries its AttentionMap. An error
        names a line as `numbers` say (decoding/inference.py: `input line N` unless told a file)."""
        from seqkit.decoding import inference

        self.require_task("translate")
        settings = self._checked(settings, DecodeConfig, "decode")
        nbest = arguments.checked_nbest(nbest, settings)
        arguments.check_chunk_lines(chunk_lines)
        steps = self._shortlisted_steps() if settings.shortlist else self.steps
        numbers = numbers or LineNumbers()
        stream = inference.translate_nbest_stream(
            steps,
            self.tokenizer,
            arguments.texts(lines, "lines", numbers),
            settings,
            with_attention,
            chunk_lines,
            nbest,
            numbers,
        )
        return self._translation_results(stream, nbest)

    def _translation_results(
        self, stream: Iterator[list[Translation]], nbest: int
    ) -> Iterator[TranslationResult]:
        # a generator of its own: translate_stream checks its arguments when called, not at the first next()
        for options in self._autocast_each(stream):
            best = options[0] if options else None
            yield TranslationResult(
                best.text if best else "", best.score if best else None, tuple(options[:nbest])
            )

    def _checked(self, settings: Settings | None, kind: builtins.type[Settings], section: str) -> Settings:
        """A stream's `settings` (None: the model's own), checked again unless this model checked them."""
        if settings is None:
            return getattr(self.config, section)
        if isinstance(settings, kind) and settings in self._checked_settings:
            return settings
        return self._remember(settings_lib.checked(self.config, settings, kind, section))

    def _shortlisted_steps(self):
        """The steps restricted to the model directory's shortlist (loaded once)."""
        if self._shortlist_steps is None:
            from seqkit.decoding import shortlist

            if self.export is not None:
                raise ConfigError(
                    f"shortlist: {self.model_dir} is an ONNX export, which computes its whole output layer; "
                    "translate with the torch model directory for a shortlist, or leave it out"
                )
            if self.config.model.copy:
                raise ConfigError(
                    f"shortlist: {self.model_dir} is a copy model, whose output mixes the attention over the "
                    "source into every piece of the vocabulary; translate it without --shortlist"
                )
            self._shortlist_steps = shortlist.ShortlistSteps(
                self.steps,
                shortlist.read(self._directory, self.tokenizer.src_vocab_size, self.tokenizer.tgt_vocab_size),
            )
        return self._shortlist_steps

    def score(self, sources: list[str], targets: list[str]) -> Scores:
        """Log-probability of each target line given its source line (an encoder-decoder)."""
        # (require_task would name `seqkit translate`, which is not what was asked)
        if self.type == "lm":
            raise ConfigError(
                f"score: {self.model_dir} is a language model, and score rates a translation given its source; "
                "a language model's perplexity is `seqkit evaluate --model DIR -r FILE`"
            )
        if self.type == "classifier":
            raise ConfigError(
                f"score: {self.model_dir} is a classifier, and score rates a translation given its source; a "
                "classifier's scores on labelled examples are model.evaluate(FILE)"
            )
        self.require_task("translate")
        if self.module is None:
            raise ConfigError(
                f"{self.model_dir} is an ONNX export, which translates and generates; scoring needs the "
                f"torch model: load {self.export['source'] if self.export else 'the model directory'}"
            )
        from seqkit.scoring.likelihood import pair_log_probs

        sources, targets = (
            list(arguments.texts(sources, "sources")),
            list(arguments.texts(targets, "targets")),
        )
        if len(sources) != len(targets):
            raise ConfigError(
                f"{len(sources)} sources but {len(targets)} targets: give one target per source"
            )
        with self._autocast():
            limit = self.config.decode.max_input_pieces
            log_probs, tokens = pair_log_probs(self.module, self.tokenizer, sources, targets, limit)
        return Scores(log_probs, tokens)

    def generate(
        self,
        prompts: Iterable[str],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        num_samples: int | None = None,
        seed: int | None = None,
    ) -> list[str]:
        """`num_samples` texts per prompt (each the prompt and its continuation), in order (a language
        model); the same seed, prompts and options give the same texts."""
        settings = self.generate_settings(
            max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
            num_samples=num_samples, seed=seed,
        )  # fmt: skip
        return list(self.generate_stream(prompts, settings))

    def generate_stream(
        self,
        prompts: Iterable[str],
        settings: GenerateConfig | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Iterator[str]:
        """`generate` as a stream, with settings from `generate_settings`; `on_text(piece)` receives each
        new piece of text as it is generated (a terminal shows it as it comes)."""
        from seqkit.decoding import inference

        self.require_task("generate")
        settings = self._checked(settings, GenerateConfig, "generate")
        if on_text is not None and not callable(on_text):  # (a TypeError at the first piece, from within)
            raise ConfigError(f"on_text: a {type(on_text).__name__}; give a function of one str, or None")
        stream = inference.generate(
            self.steps, self.tokenizer, arguments.texts(prompts, "prompts"), settings, on_text
        )
        return self._autocast_each(stream)

    def predict(self, lines: Iterable[str], *, batch_size: int | None = None) -> list[Prediction | None]:
        """A classifier's or forecaster's `Prediction` (decoding/classify.py: label, probabilities, or
        values) for each line, in order: text, or numbers x1,x2,...; None for an empty line."""
        return list(self.predict_stream(lines, batch_size))

    def predict_stream(
        self,
        lines: Iterable[str],
        batch_size: int | None = None,
        chunk_lines: int = 256,
        source: str | None = None,
    ) -> Iterator[Prediction | None]:
        """`predict` as a stream, `chunk_lines` lines at a time (1: each line answered as it comes); an
        error names the line as `source:N` (a file's name), or `input line N`."""
        from seqkit.decoding.classify import predict_lines
        from seqkit.decoding.inference import in_chunks

        self.require_task("predict")
        settings = self.decode_settings(batch_size=batch_size)
        arguments.check_chunk_lines(chunk_lines)
        data = self.config.data
        # a model of one series reads windows of this many steps
        window = data.window if data.series else None
        return in_chunks(
            arguments.texts(lines, "lines", LineNumbers(source)),
            settings,
            lambda chunk, first: predict_lines(
                self.tokenizer,  # type: ignore[arg-type]  # a classifier's is a Codec
                self.steps,
                chunk,
                settings.batch_size,
                first,
                source,
                window,
            ),
            chunk_lines,
        )

    def evaluate(self, data: str | Path, *, batch_size: int | None = None) -> dict:
        """A classifier's or forecaster's scores on labelled test data beside its baselines (what `seqkit
        evaluate --model DIR --data FILE --json` prints)."""
        from seqkit.scoring.prediction import evaluate

        self.require_task("predict", "evaluate --data")
        if not isinstance(data, str | os.PathLike):  # (None was "neither None.text nor None.text.gz exists")
            raise ConfigError(
                f"data: a {type(data).__name__}; give the path of a labelled file (a str or Path)"
            )
        size = self.decode_settings(batch_size=batch_size).batch_size
        return {
            "model": str(self.model_dir),
            **evaluate(self.config, self.tokenizer, self.steps, str(data), size),  # type: ignore[arg-type]
        }

    def info(self) -> dict:
        """What `seqkit info --json` prints: layers, parameters, vocabulary, training, files (for an
        export: its description, export.json). The directory is read now: after a resumed training it
        describes the run as it is, not the weights this Model loaded."""
        if self.export is not None:
            return self.export
        from seqkit.viz import summary

        return {**summary.summarize(self._directory), "model_dir": str(self.model_dir)}

    def _autocast_each(self, stream: Iterator[Any]) -> Iterator[Any]:
        """The items of `stream`, each computed under the model's autocast, which is off again while the
        caller holds the item (autocast is a process-wide state: it must not reach the caller's code)."""
        while True:
            with self._autocast():
                item = next(stream, _END)
            if item is _END:
                return
            yield item

    def _autocast(self):
        if self.module is None:
            return nullcontext()
        from seqkit.runtime import devices

        return devices.Precision(self.precision, devices.model_device(self.module)).autocast()
