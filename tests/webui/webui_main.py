"""The web UI as NiceGUI's user simulation runs it (its `main_file`): settings come from the
VOXBATCH_WEBUI_* variables that the `user` fixture sets, as in production."""

from voxbatch_webui.main import run
from voxbatch_webui.settings import WebUISettings

run(WebUISettings.load())
