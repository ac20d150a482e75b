"""What the property tests hold every generated config to: a clean refusal (the
settings' ConfigError, each problem naming a setting, no traceback, no secret echoed),
or rendered files that carry each drawn value exactly."""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml

from flasklab import plan
from flasklab.app_secrets import AppSecrets, rules_for
from flasklab.render import (
    RenderedFile,
    build_cloud_config,
    render_files,
    render_user_data,
    user_data_problems,
)
from flasklab.settings import ConfigError, Settings, declared_keys
from tests.conftest import TEST_SECRETS
from tests.settings_strategies import SECRET_KEYS, SECRET_MARK

# libyaml's loader, for speed: the checkers also load the user-data with cloud-init's own.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# AWS's limit on a tag's value (EC2 refuses longer ones when the instance is created).
AWS_TAG_VALUE_MAX = 256


def refusal_problems(error: ConfigError, raw: dict[str, Any]) -> list[str]:
    """How a refusal falls short of the rules ([] when it is clean)."""
    text = str(error)
    found = []
    if "Traceback" in text:
        found.append(f"the refusal holds a traceback: {text}")
    keys = declared_keys()
    for problem in error.problems:
        named = [key for key in keys if key in problem] + [key for key in raw if key in problem]
        if not named:
            found.append(f"a problem names no setting: {problem!r}")
    for key in SECRET_KEYS:
        value = raw.get(key)
        if isinstance(value, str) and SECRET_MARK in value and SECRET_MARK in text:
            found.append(f"the refusal echoes {key}'s secret value: {text}")
    return found


def secrets_of(settings: Settings) -> AppSecrets:
    """The chosen secrets, else the tests' stand-ins."""
    return AppSecrets(
        **{
            rule.field: settings.chosen_secrets.value(rule) or getattr(TEST_SECRETS, rule.field)
            for rule in rules_for(settings.database is not None)
        }
    )


def user_data_round_trip(settings: Settings, files: list[RenderedFile]) -> list[str]:
    """The user-data, as cloud-init loads it back, writes each file exactly as rendered."""
    secrets = secrets_of(settings)
    document = yaml.load(render_user_data(settings, secrets), Loader=_Loader)
    if document != build_cloud_config(settings, secrets):
        return ["the user-data does not load back as the cloud-config it was made from"]
    written = {entry["path"]: entry["content"] for entry in document["write_files"]}
    return [f"{file.path} is written changed" for file in files if written.get(file.path) != file.content]


def _file(files: list[RenderedFile], ending: str) -> RenderedFile | None:
    return next((file for file in files if file.path.endswith(ending)), None)


# The catch-all sites' names (Nginx's default server, Apache's first virtual host).
_CATCH_ALL = ({"_"}, {"default.invalid"})


def _site_names(files: list[RenderedFile]) -> list[list[str]]:
    """The names each server block or virtual host of the web server's sites answers to,
    as Nginx or Apache reads them (the catch-alls left out)."""
    found = []
    for file in files:
        if file.checker == "nginx":
            found += [line.split() for line in re.findall(r"^\s*server_name ([^;]*);", file.content, re.M)]
        if file.checker == "apache":
            for block in file.content.split("<VirtualHost")[1:]:
                found.append(re.findall(r"^\s*Server(?:Name|Alias) (\S+)$", block, re.M))
    return [names for names in found if names and set(names) not in _CATCH_ALL]


def _env_file_values(files: list[RenderedFile]) -> dict[str, str]:
    env = next(file for file in files if file.checker == "env")
    return dict(
        word.partition("=")[::2]
        for line in env.content.splitlines()
        for word in shlex.split(line, comments=True)
    )


def sh_words(line: str) -> list[str]:
    """The words sh reads from a line of quoted words, as POSIX quotes them: '...' as is,
    "..." with \\ escaping $ ` " and \\ only (shlex keeps those backslashes)."""
    words: list[str] = []
    word, index, in_word = "", 0, False
    while index < len(line):
        char = line[index]
        if char in " \t":
            if in_word:
                words.append(word)
            word, in_word = "", False
        elif char == "'":
            end = line.index("'", index + 1)
            word, index = word + line[index + 1 : end], end
        elif char == '"':
            index += 1
            while line[index] != '"':
                if line[index] == "\\" and line[index + 1] in '$`"\\':
                    index += 1
                word, index = word + line[index], index + 1
        elif char == "\\":
            word, index = word + line[index + 1], index + 1
        else:
            word += char
        in_word = in_word or char not in " \t"
        index += 1
    return [*words, word] if in_word else words


def _words_of_line_with(script: str, marker: str) -> list[str]:
    """The shell words of the script's first line holding marker (without a trailing \\)."""
    line = next((line for line in script.splitlines() if marker in line), "")
    return sh_words(line.removesuffix("\\").rstrip())


def _last_word_of_line_with(script: str, marker: str) -> str | None:
    return (_words_of_line_with(script, marker) or [None])[-1]


def carried_problems(raw: dict[str, Any], settings: Settings, files: list[RenderedFile]) -> list[str]:
    """Each drawn value the rendered files (or the resources' tags) must hold exactly."""
    found = []
    names = _site_names(files)
    # A class's student answers to <student>.<serverName> unless the roster names it.
    drawn = raw.get("serverName") if not settings.student else None
    if isinstance(drawn, str) and settings.server_name != drawn:
        found.append(f"serverName {drawn!r} became {settings.server_name!r}")
    if not names and any(file.checker in ("nginx", "apache") for file in files):
        found.append(f"no site answers to the server's names {settings.server_names}")
    for site in names:
        if site != list(settings.server_names):
            found.append(f"a site answers to {site}, not to the server's names {settings.server_names}")
    # At stage bare the student makes the app's environment: there is no env file to check.
    if isinstance(raw.get("appEnv"), dict) and settings.stage.installs_app:
        env = _env_file_values(files)
        for name, value in raw["appEnv"].items():
            if env.get(name) != str(value):
                found.append(f"the env file reads appEnv.{name} as {env.get(name)!r}, not {str(value)!r}")
    # sh (dash) drops NUL bytes as it reads a script, and C programs end strings there.
    found += [f"{file.path} holds a NUL byte" for file in files if "\0" in file.content]
    script = next(file.content for file in files if file.path.endswith("flasklab-deploy"))
    repo = raw.get("appRepo")
    if isinstance(repo, str) and repo.strip():
        read = _words_of_line_with(script, "git clone")[-2]
        if read != repo.strip():
            found.append(f"the deploy script clones {read!r}, not appRepo {repo.strip()!r}")
    letsencrypt = _file(files, "flasklab-letsencrypt")
    email = raw.get("tlsEmail")
    if letsencrypt is not None and isinstance(email, str):
        words = _words_of_line_with(letsencrypt.content, "--email")
        if words[words.index("--email") + 1] != email.strip():
            found.append(f"certbot gets --email {words[words.index('--email') + 1]!r}, not {email.strip()!r}")
    ready_text = raw.get("readyText")
    if isinstance(ready_text, str) and ready_text:
        read = _last_word_of_line_with(script, "grep --quiet --fixed-strings")
        if read != ready_text:
            found.append(f"the deploy script looks for {read!r}, not readyText {ready_text!r}")
    migrate = raw.get("appMigrate")
    if isinstance(migrate, str) and migrate.strip():
        read = _last_word_of_line_with(script, "flasklab-migrate")
        if read != migrate.strip():
            found.append(f"the deploy script migrates with {read!r}, not appMigrate {migrate.strip()!r}")
    course = plan.tags(settings)[plan.TAG_COURSE]
    if isinstance(raw.get("course"), str) and course != raw["course"]:
        found.append(f"the course tag is {course!r}, not course {raw['course']!r}")
    for tag, value in plan.tags(settings).items():
        if len(value) > AWS_TAG_VALUE_MAX:
            found.append(f"tag {tag} is {len(value)} characters: AWS refuses over {AWS_TAG_VALUE_MAX}")
    return found


def rendered_or_refused(
    raw: dict[str, Any], servers: list[Settings]
) -> list[tuple[Settings, list[RenderedFile]]]:
    """Each accepted server's files; a user-data too big for EC2 is a refusal, checked too."""
    rendered = []
    for settings in servers:
        size_problems = user_data_problems(settings)
        if size_problems:
            assert all("Traceback" not in problem for problem in size_problems)
            continue
        rendered.append((settings, render_files(settings, secrets_of(settings))))
    return rendered
