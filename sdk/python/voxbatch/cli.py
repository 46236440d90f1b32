"""The `voxbatch` command line: serve, webui, say, voices, info, download-model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voxbatch.tts.v1 import tts_pb2 as pb

from .client import DEFAULT_TARGET, Client
from .errors import VoxbatchError
from .options import Encoding, Priority, Reference, build_request
from .output import AudioOutput, OutputError



def _serve(args: argparse.Namespace) -> int:
    import asyncio

    try:  # lazy: the SDK works without the server
        from voxbatch_server.server import serve
        from voxbatch_server.settings import Settings, SettingsError, StartupError
    except ImportError as error:
        print(f"voxbatch serve: the server is not installed ({error}); install voxbatch[server]", file=sys.stderr)
        return 2
    try:
        settings = Settings.load(args)
    except SettingsError as error:
        print(f"voxbatch serve: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        pass
    except SettingsError as error:  # found at start-up, such as a keys file that does not parse
        print(f"voxbatch serve: {error}", file=sys.stderr)
        return 2
    except StartupError as error:  # a port in use, a model folder of the wrong kind, no CUDA
        print(f"voxbatch serve: {error}", file=sys.stderr)
        return 1
    return 0


def _webui(args: argparse.Namespace) -> int:
    try:  # lazy: the SDK works without NiceGUI
        from voxbatch_webui.main import main as webui_main
    except ImportError as error:
        print(f"voxbatch webui: the web UI is not installed ({error}); install voxbatch[webui]", file=sys.stderr)
        return 2
    return webui_main(args)


def _say(args: argparse.Namespace) -> int:
    # Everything that can be checked here is, before the text is sent: a bad flag must not cost
    # a synthesis, nor leave a half-written file.
    output = AudioOutput(args.output, args.encoding)
    if args.reference_text is not None and not args.reference:
        raise UsageError("--reference-text says what the --reference recording says; give --reference too")
    options = dict(
        voice=args.voice,
        encoding=Encoding.parse(output.encoding),
        sample_rate=args.sample_rate,
        speaking_rate=args.speaking_rate,
        temperature=args.temperature,
        seed=args.seed,
        cfg_value=args.cfg_value,
        inference_steps=args.inference_steps,
        retry_badcase=args.retry_badcase,
        priority=Priority.BACKGROUND if args.background else Priority.INTERACTIVE,
        normalize=args.normalize,
    )
    if args.reference:
        options["reference"] = Reference(_read_recording(args.reference, "reference"), args.reference_text or "")
    if args.instructions:
        options["instructions"] = args.instructions
    if args.prompt or args.prompt_text:
        if not (args.prompt and args.prompt_text and args.reference):
            raise UsageError("--prompt needs --prompt-text and a --reference (without --reference-text)")
        options["prompt"] = Reference(_read_recording(args.prompt, "prompt"), args.prompt_text)
    build_request(pb.SynthesizeRequest, "", **options)  # argument errors now, not after the call
    text = sys.stdin.read() if args.text == "-" else args.text
    with _client(args) as client:
        if args.stream:
            capped = False
            with output.open(streamed_wav=output.encoding == "wav") as f:
                for chunk in client.stream(text, **options):
                    f.write(chunk.data)
                    capped = capped or chunk.length_capped
                    note = " (cut short at the length cap)" if chunk.length_capped else ""
                    print(f"part {chunk.sentence_index + 1}/{chunk.sentence_count}: {chunk.duration_seconds:.2f} s{note}",
                          file=sys.stderr)
            print(f"wrote {output.name}", file=sys.stderr)
            _warn_capped(capped)
            return 0
        audio = client.synthesize(text, **options)
        with output.open() as f:
            f.write(audio.data)
        t = audio.timings
        print(
            f"wrote {output.name}: {audio.duration_seconds:.2f} s at {audio.sample_rate} Hz "
            f"(queue {t.queue_wait_seconds * 1000:.0f} ms, batch {t.batch_size}, compute {t.compute_seconds:.2f} s"
            f"{', cached' if t.cache_hit else ''})",
            file=sys.stderr,
        )
        _warn_capped(audio.length_capped)
    return 0


def _read_recording(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read the {what} recording {path}: {error.strerror}") from None


def _warn_capped(capped: bool) -> None:
    if capped:
        print("warning: the engine stopped at least one sentence at its length cap (length_capped); "
              "its end may be missing: shorten or rephrase it", file=sys.stderr)


def _voices(args: argparse.Namespace) -> int:
    """`voxbatch voices` and `voxbatch voices ls`: one line per voice."""
    with _client(args) as client:
        response = client.voices()
    for voice in response.voices:
        default = " (default)" if voice.name == response.default_voice else ""
        saved = " [saved]" if voice.kind == pb.VOICE_KIND_SAVED else ""
        languages = ",".join(voice.languages) or voice.language_code
        print(f"{voice.name}\t{languages}\t{voice.sample_rate_hz} Hz\t{voice.description}{default}{saved}")
    return 0


def _voices_add(args: argparse.Namespace) -> int:
    from .options import Reference

    reference = Reference(Path(args.audio).read_bytes(), args.text or "")
    with _client(args) as client:
        voice = client.create_voice(
            args.name, reference, description=args.description, languages=args.language or (), instructions=args.instructions
        )
    print(f"saved voice {voice.name} ({', '.join(voice.languages)}, {voice.reference_seconds:.1f} s clip); "
          f"use it with: voxbatch say --voice {voice.name} ...", file=sys.stderr)
    return 0


def _voices_rm(args: argparse.Namespace) -> int:
    with _client(args) as client:
        for name in args.names:
            client.delete_voice(name)
            print(f"deleted voice {name}", file=sys.stderr)
    return 0


def _info(args: argparse.Namespace) -> int:
    from google.protobuf import json_format

    with _client(args) as client:
        print(json_format.MessageToJson(client.server_info(), always_print_fields_with_no_presence=True))
    return 0


def _keys(args: argparse.Namespace) -> int:
    from voxbatch_server.auth import admin

    return admin.run(args)


def _client(args: argparse.Namespace) -> Client:
    """A client from the common flags. The key: --api-key-file, else --api-key, else VOXBATCH_API_KEY
    (the variable or the file keep it out of process listings; --api-key does not)."""
    api_key = Path(args.api_key_file).read_text().strip() if args.api_key_file else args.api_key
    return Client(args.server, timeout=args.timeout, api_key=api_key, ca_file=args.ca_file,
                  client_cert=args.client_cert, client_key=args.client_key)


def _download_model(args: argparse.Namespace) -> int:
    try:
        from voxbatch_server.engines.voxcpm.download import download
    except ImportError as error:
        print(f"voxbatch download-model: the VoxCPM engine is not installed ({error}); install voxbatch[voxcpm]", file=sys.stderr)
        return 2
    folder = download(Path(args.dir), repo=args.repo, revision=args.revision)
    print(f"downloaded {args.repo} into {folder}; serve it with: voxbatch serve --engine voxcpm --model-dir {folder}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxbatch", description="voxbatch text-to-speech server and client")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gRPC server")
    try:
        from voxbatch_server.settings import Settings

        Settings.add_arguments(serve)
    except ImportError:  # the SDK can be installed without the server
        pass
    serve.set_defaults(func=_serve)

    webui = commands.add_parser("webui", help="run the web UI (NiceGUI) in front of a server")
    try:
        from voxbatch_webui.settings import WebUISettings  # no NiceGUI import: cheap

        WebUISettings.add_arguments(webui)
    except ImportError:  # the SDK can be installed without the web UI
        pass
    webui.set_defaults(func=_webui)

    try:
        from voxbatch_server.auth import admin

        keys = commands.add_parser("keys", help="manage the API keys file of a server (create, list, revoke)")
        admin.add_arguments(keys)
        keys.set_defaults(func=_keys)
    except ImportError:  # the SDK can be installed without the server
        pass

    fetch = commands.add_parser("download-model", help="download the official VoxCPM checkpoint into a folder (needs internet)")
    fetch.add_argument("--dir", required=True, help="folder to download into")
    fetch.add_argument("--repo", default="openbmb/VoxCPM1.5", help="Hugging Face repository (default openbmb/VoxCPM1.5)")
    fetch.add_argument("--revision", default=None, help="branch, tag or commit")
    fetch.set_defaults(func=_download_model)

    def client_command(name: str, help_text: str, func) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--server", default=DEFAULT_TARGET,
                         help=f"server address: host:port, or https://host[:port] for TLS (default {DEFAULT_TARGET})")
        sub.add_argument("--timeout", type=float, default=300.0, help="seconds before giving up")
        sub.add_argument("--api-key", default=None,
                         help="API key (prefer the VOXBATCH_API_KEY variable or --api-key-file: flags show in process lists)")
        sub.add_argument("--api-key-file", default=None, help="file holding the API key")
        sub.add_argument("--ca-file", default=None, help="CA certificate (PEM) that signed the server's; implies TLS")
        sub.add_argument("--client-cert", default=None, help="client certificate (PEM), for servers that ask for one (mutual TLS)")
        sub.add_argument("--client-key", default=None, help="the client certificate's private key (PEM)")
        sub.set_defaults(func=func)
        return sub

    say = client_command("say", "synthesize text into an audio file", _say)
    say.add_argument("text", help="text to speak, or - to read standard input")
    say.add_argument("-o", "--output", default="out.wav",
                     help="output file, written only if the call succeeds; its suffix picks the format; - for standard output")
    say.add_argument("--format", "--encoding", dest="encoding", choices=[e.name.lower() for e in Encoding],
                     help="audio format, whatever the output's suffix")
    say.add_argument("--voice", default="", help="voice name (default: the server's default voice)")
    say.add_argument("--sample-rate", type=int, default=0, help="output sample rate, 0 = native")
    say.add_argument("--speaking-rate", type=float)
    say.add_argument("--temperature", type=float)
    say.add_argument("--seed", type=int)
    say.add_argument("--cfg-value", type=float)
    say.add_argument("--inference-steps", type=int)
    say.add_argument("--reference", help="reference recording to clone the voice from")
    say.add_argument(
        "--reference-text",
        help="what the reference recording says; leave out to clone from the clip alone (VoxCPM2)",
    )
    say.add_argument(
        "--instructions", help='how the voice should sound, e.g. "a warm, slow, elderly voice" (VoxCPM2)'
    )
    say.add_argument("--prompt", help="a recording to continue from, next to a --reference without text (VoxCPM2)")
    say.add_argument("--prompt-text", help="what the --prompt recording says")
    say.add_argument(
        "--retry-badcase", action=argparse.BooleanOptionalAction, default=None,
        help="generate a sentence again when it never stops (VoxCPM; default: on when unseeded)",
    )
    say.add_argument("--background", action="store_true", help="run at background priority")
    say.add_argument("--stream", action="store_true", help="stream sentence by sentence")
    say.add_argument(
        "--normalize", action=argparse.BooleanOptionalAction, default=None,
        help="spell out numbers, dates, units... first (default: the engine's choice)",
    )

    voices = client_command("voices", "list the server's voices (built-in and saved); add or remove saved ones", _voices)
    voice_commands = voices.add_subparsers(dest="voices_command")

    def voice_command(name: str, help_text: str, func) -> argparse.ArgumentParser:
        sub = voice_commands.add_parser(name, help=help_text)
        # Also accepted after the sub-command; SUPPRESS keeps the value given before it otherwise.
        sub.add_argument("--server", default=argparse.SUPPRESS, help="server address")
        sub.add_argument("--timeout", type=float, default=argparse.SUPPRESS, help="seconds before giving up")
        sub.set_defaults(func=func)
        return sub

    voice_command("ls", "list the voices (the same as `voxbatch voices`)", _voices)
    add = voice_command("add", "save a cloned voice from a recording, for use by name", _voices_add)
    add.add_argument("name", help="the voice's name: lower-case letters, digits, - _ . (such as narrator-anna)")
    add.add_argument("--audio", required=True, help="the recording to clone (WAV, FLAC, Ogg or MP3)")
    add.add_argument("--text", help="what the recording says, word for word")
    add.add_argument("--description", default="", help="a short description for people")
    add.add_argument("--language", action="append", help="a language the voice speaks (en, zh; repeat for more; default: all the engine speaks)")
    add.add_argument("--instructions", default="", help="default instructions, for engines that take them")
    rm = voice_command("rm", "delete saved voices", _voices_rm)
    rm.add_argument("names", nargs="+", help="names of saved voices")
    client_command("info", "show the server's engine, batching settings and queue", _info)
    return parser


class UsageError(Exception):
    """A flag the command cannot work with; reported as one line, exit status 2."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except VoxbatchError as error:
        print(f"voxbatch {args.command}: {error}", file=sys.stderr)
        return 1
    except (UsageError, OutputError) as error:
        print(f"voxbatch {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"voxbatch {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as error:  # writing the output failed (disk full, ...)
        print(f"voxbatch {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
