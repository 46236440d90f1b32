"""Checks of a synthesis request against what the engine and the chosen voice accept, made
before any audio is decoded or any work is queued."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence

from .domain import EngineInfo, ParameterSpec, SynthesisRequest
from .errors import InvalidInput
from .languages import can_read, foreign_script


async def check_script(text: str, voice, voices: Callable[[], Awaitable[Sequence]]) -> None:
    """Refuse text mostly in a script the voice cannot read, naming voices that can."""
    problem = foreign_script(text, voice.spoken_languages)
    if problem is None:
        return
    able = [v.name for v in await voices() if can_read(v.spoken_languages, problem.script)]
    suggestion = f"; voices that can: {', '.join(able[:5])}" if able else "; no voice on this server reads it"
    raise InvalidInput(
        f"the text is mostly in {problem.described}, which voice {voice.name!r} cannot read: "
        f"it speaks {', '.join(voice.spoken_languages)}{suggestion}"
    )


def check_voice_design(info: EngineInfo, request: SynthesisRequest) -> None:
    """Instructions and a prompt next to an isolated reference are refused, saying what to do
    instead, by engines that cannot use them (before any clip is decoded)."""
    if request.instructions.strip() and not info.supports_instructions:
        raise InvalidInput(
            f"the {info.name} engine ({info.model}) cannot follow instructions; leave instructions empty "
            "or serve a VoxCPM2 model"
        )
    if request.prompt is not None and not info.supports_isolated_reference:
        raise InvalidInput(
            f"the {info.name} engine ({info.model}) takes no prompt besides the reference; send the clip "
            "to continue from as reference, with its transcript"
        )


def check_params(engine_name: str, specs: Mapping[str, ParameterSpec], request: SynthesisRequest) -> None:
    for name, value in request.params.given().items():
        spec = specs.get(name)
        if spec is None:
            supported = ", ".join(specs) or "none"
            raise InvalidInput(f"the {engine_name} engine does not use {name}; parameters it supports: {supported}")
        if not math.isfinite(value) or not spec.minimum <= value <= spec.maximum:
            raise InvalidInput(f"{name} must be between {_number(spec.minimum)} and {_number(spec.maximum)}, not {value}")


def _number(value: float) -> str:
    """4294967295 rather than 4.29497e+09; 0.25 as it is."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
