"""The engine's parameters as a person sets them: every parameter the server lists gets a control
with the server's range and default, and what the person changes reaches the engine."""

from __future__ import annotations

import dataclasses

import pytest

from tests.support.engines import ToneEngine
from tests.support.server import ServerThread
from voxbatch_server.domain import ParameterSpec

from .helpers import one, see


class ParameterEngine(ToneEngine):
    """A tone engine that lists VoxCPM's parameters and remembers what each request asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.info = dataclasses.replace(self.info, parameters=(
            ParameterSpec("cfg_value", 1.0, 3.0, 2.0, "Guidance strength."),
            ParameterSpec("inference_steps", 1, 50, 10, "Diffusion steps."),
            ParameterSpec("temperature", 0.0, 2.0, 1.0, "Sampling temperature."),
            ParameterSpec("seed", 0, 2**32 - 1, 0, "Random seed."),
        ))
        self.asked: list = []

    def prepare(self, task):
        self.asked.append(task.params)
        return super().prepare(task)


@pytest.fixture(scope="module")
def engine():
    return ParameterEngine()


@pytest.fixture(scope="module")
def parameter_server(engine):
    with ServerThread(engine, cache_mb=0) as server:
        yield server


@pytest.fixture
def webui_target(parameter_server) -> str:
    return parameter_server.target


async def test_each_listed_parameter_gets_a_control_with_the_servers_range(user):
    await user.open("/")
    await see(user, marker="param-cfg_value")
    cfg, steps, temperature = one(user, "param-cfg_value"), one(user, "param-inference_steps"), one(user, "param-temperature")
    assert (cfg.props["min"], cfg.props["max"], cfg.value) == (1.0, 3.0, 2.0)
    assert (steps.props["min"], steps.props["max"], steps.value, steps.props["step"]) == (1, 50, 10, 1)
    assert (temperature.props["min"], temperature.props["max"], temperature.value) == (0.0, 2.0, 1.0)
    assert one(user, "param-seed").value is None  # empty: a random seed
    await see(user, "Guidance (cfg)")
    await see(user, "Quality steps")
    await user.should_not_see(marker="param-speaking_rate")  # this engine does not list it


async def test_what_the_person_changes_reaches_the_engine_and_the_rest_stays_default(user, engine):
    await user.open("/")
    await see(user, marker="param-cfg_value")
    one(user, "param-cfg_value").set_value(2.5)
    one(user, "param-inference_steps").set_value(20)
    one(user, "param-seed").set_value(42)
    user.find(marker="stream").click()
    user.find(marker="text").type("Parameters travel with the request.")
    engine.asked.clear()
    user.find(marker="synthesize").click()
    await see(user, marker="result-audio")
    asked = engine.asked[-1]
    assert (asked.cfg_value, asked.inference_steps, asked.seed) == (2.5, 20, 42)
    assert asked.temperature is None and asked.speaking_rate is None  # untouched: the engine's default
    user.find(marker="reset-parameters").click()
    assert one(user, "param-cfg_value").value == 2.0 and one(user, "param-seed").value is None
