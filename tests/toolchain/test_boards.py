"""Board configs: every shipped board loads and validates, --target resolution, bad configs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgeq.cli import cli
from edgeq.errors import BuildError
from edgeq.toolchain.boards import (
    board_dir,
    list_boards,
    load_board_file,
    power_model,
    resolve_target,
)
from edgeq.toolchain.linker import board_header, linker_script, uart_divisor

EMULATED = {"mps2-an386", "mps2-an500", "mps2-an385", "mps2-an505", "netduinoplus2"}
REAL = {"nucleo-l4r5zi", "nucleo-f446re", "stm32f4-discovery", "nrf52840dk", "nucleo-h743zi"}


def test_all_required_boards_present_and_valid():
    boards = {b.name: b for b in list_boards()}
    assert EMULATED | REAL <= set(boards)
    for name in EMULATED:
        assert boards[name].emulated and boards[name].counter == "systick_icount"
    for name in REAL:
        b = boards[name]
        assert not b.emulated and b.counter == "dwt"
        assert b.pyocd_target and b.flasher == "pyocd"
        assert b.power.supply_v and b.power.run_ua_per_mhz and b.power.source
        assert b.max_clock_hz >= b.clock_hz > 0


def test_datasheet_figures():
    b = resolve_target(board="nucleo-l4r5zi")
    assert (b.max_clock_hz, b.flash.length, b.ram.length) == (120_000_000, 2 << 20, 640 << 10)
    b = resolve_target(board="nucleo-f446re")
    assert (b.max_clock_hz, b.flash.length, b.ram.length) == (180_000_000, 512 << 10, 128 << 10)
    b = resolve_target(board="nrf52840dk")
    assert (b.max_clock_hz, b.flash.length, b.ram.length) == (64_000_000, 1 << 20, 256 << 10)
    assert resolve_target(board="nucleo-h743zi").max_clock_hz == 480_000_000
    assert resolve_target(board="stm32f4-discovery").flash.length == 1 << 20


@pytest.mark.parametrize("core,board", [("cortex-m4", "mps2-an386"), ("cortex-m7", "mps2-an500"),
                                        ("cortex-m3", "mps2-an385"), ("cortex-m33", "mps2-an505")])
def test_target_core_resolves_to_default_emulated_board(core, board):
    b = resolve_target(core)
    assert b.name == board and b.emulated and b.core == core


def test_target_board_name_and_board_option():
    assert resolve_target("nucleo-f446re").name == "nucleo-f446re"
    assert resolve_target("cortex-m4", "netduinoplus2").name == "netduinoplus2"
    assert resolve_target(None, None).name == "mps2-an386"


def test_unknown_target_and_board_are_one_line_errors():
    with pytest.raises(BuildError, match="unknown target 'cortex-m99'.*cortex-m4"):
        resolve_target("cortex-m99")
    with pytest.raises(BuildError, match="unknown board 'nope'.*mps2-an386"):
        resolve_target(board="nope")
    with pytest.raises(BuildError, match="has a cortex-m7, not cortex-m4"):
        resolve_target("cortex-m4", "nucleo-h743zi")


def _broken(tmp_path: Path, edit) -> Path:
    src = board_dir() / "mps2-an386.toml"
    text = edit(src.read_text())
    dst = tmp_path / "mps2-an386.toml"
    dst.write_text(text)
    return dst


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace('driver = "cmsdk"', 'driver = "pl011"'), "uart.driver = 'pl011'"),
    (lambda t: t.replace("hz = 25_000_000 ", "hz = \"fast\" "), "clock.hz has the wrong type"),
    (lambda t: t.replace('core = "cortex-m4"', 'core = "cortex-a53"'), "core = 'cortex-a53'"),
    (lambda t: t.replace("[counter]", "[countr]"), "counter table is missing"),
    (lambda t: t.replace('kind = "ram"', 'kind = "rom"'), "memory\\[1\\].kind"),
    (lambda t: t + "\n[[[", "not valid TOML"),
    (lambda t: t.replace('name = "mps2-an386"', 'name = "other"'), "differs from the file name"),
])
def test_invalid_board_config_names_file_and_field(tmp_path, edit, message):
    with pytest.raises(BuildError, match=message):
        load_board_file(_broken(tmp_path, edit))


def test_board_path_and_env_dir(tmp_path, monkeypatch):
    path = _broken(tmp_path, lambda t: t.replace("0x00400000      # 4 MB ZBT SSRAM2/3",
                                                 "0x1000"))
    assert resolve_target(board=str(path)).ram.length == 0x1000
    monkeypatch.setenv("EDGEQ_BOARD_DIR", str(tmp_path))
    assert [b.name for b in list_boards()] == ["mps2-an386"]
    monkeypatch.setenv("EDGEQ_BOARD_DIR", str(tmp_path / "empty"))
    with pytest.raises(BuildError, match="no board configs"):
        list_boards()


def test_linker_script_uses_board_regions():
    b = resolve_target(board="netduinoplus2")
    ld = linker_script(b)
    assert "ORIGIN = 0x08000000, LENGTH = 0x100000" in ld
    assert "ORIGIN = 0x20000000, LENGTH = 0x20000" in ld
    assert ". = . + 0x2000;" in ld  # stack_bytes
    assert "LENGTH = 0x10000000" in linker_script(b, measure=True)


def test_uart_divisors_and_board_header():
    assert uart_divisor(resolve_target(board="mps2-an386")) == 217  # 25 MHz / 115200
    f446, l4 = resolve_target(board="nucleo-f446re"), resolve_target(board="nucleo-l4r5zi")
    assert uart_divisor(f446) == 391  # PCLK1 = 180 MHz / 4 = 45 MHz; 45e6 / 115200 = 390.6
    assert uart_divisor(f446, at_reset_clock=True) == 139  # HSI 16 MHz / 115200
    assert uart_divisor(l4) == 266_667  # LPUART: 256 * 120 MHz / 115200
    assert uart_divisor(l4, at_reset_clock=True) == 8889  # 256 * MSI 4 MHz / 115200
    assert uart_divisor(resolve_target(board="nucleo-h743zi")) == 868  # 100 MHz / 115200
    assert uart_divisor(resolve_target(board="nrf52840dk")) == 0x01D7E000  # datasheet value
    h = board_header(resolve_target(board="nucleo-f446re"))
    assert "#define EQ_BOARD_INIT_COUNT 4u" in h and "0x40023830u" in h
    assert "#define EQ_UART_DIVISOR 0x187u" in h and "#define EQ_UART_DIVISOR_RESET 0x8bu" in h
    assert "#define EQ_CLOCK_SETUP 1" in h and "#define EQ_CLOCK_PLL_N 180u" in h
    assert "#define EQ_MARKER_SET_ADDR 0x40020018u" in h  # GPIOA BSRR (PA10)
    assert "#define EQ_MARKER_CLEAR_VALUE 0x04000000u" in h  # BSRR reset half, bit 10 + 16
    qemu = board_header(resolve_target(board="netduinoplus2"))
    assert "#define EQ_CLOCK_SETUP 0" in qemu and "EQ_MARKER_SET_ADDR" not in qemu


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace("pll_n = 30", "pll_n = 31"), "PLL factors give 124000000 Hz"),
    (lambda t: t.replace('tree = "stm32l4"', 'tree = "stm32x9"'), "clock.tree = 'stm32x9'"),
    (lambda t: t.replace('port = "PF"', 'port = "PZ"'), "marker needs"),
    (lambda t: t.replace('voltage = "range1-boost"', 'voltage = "vos1"'),
     "voltage = \"vos1\" is not implemented for clock.tree = \"stm32l4\""),
    (lambda t: t.replace("apb1_div = 1", "apb1_div = 3") if "apb1_div" in t
     else t.replace("flash_ws = 5", "flash_ws = 5\napb1_div = 3"), "apb1_div = 3 is not"),
])
def test_invalid_clock_config_is_refused(tmp_path, edit, message):
    src = board_dir() / "nucleo-l4r5zi.toml"
    dst = tmp_path / "nucleo-l4r5zi.toml"
    dst.write_text(edit(src.read_text()))
    with pytest.raises(BuildError, match=message):
        load_board_file(dst)


def test_operating_point_facts_on_the_board_object():
    b = resolve_target(board="nucleo-l4r5zi")
    assert (b.clock_hz, b.reset_clock_hz, b.clock.flash_ws, b.clock.voltage) == (
        120_000_000, 4_000_000, 5, "range1-boost")
    assert (b.uart_clock_hz, b.uart_reset_clock_hz) == (120_000_000, 4_000_000)
    h7 = resolve_target(board="nucleo-h743zi")
    assert (h7.clock_hz, h7.uart_clock_hz) == (400_000_000, 100_000_000)  # core /1, bus /2 /2
    assert resolve_target(board="mps2-an386").clock.configured is False


def test_emulated_boards_borrow_a_real_power_model():
    model, source = power_model(resolve_target(board="mps2-an386"))
    assert source == "nucleo-l4r5zi" and model.run_ua_per_mhz == 110.0


def test_cli_boards_lists_everything():
    res = CliRunner().invoke(cli, ["boards"])
    assert res.exit_code == 0, res.output
    for name in EMULATED | REAL:
        assert name in res.output
    assert "qemu mps2-an386" in res.output and "pyocd stm32l4r5zitx" in res.output
    res = CliRunner().invoke(cli, ["boards", "--json"])
    rows = json.loads(res.output)
    an386 = next(r for r in rows if r["name"] == "mps2-an386")
    assert an386["flash_bytes"] == 4 << 20 and an386["default_for"] == "cortex-m4"


def test_cli_boards_bad_dir_is_one_line(tmp_path, monkeypatch):
    shutil.copy(board_dir() / "mps2-an386.toml", tmp_path / "mps2-an386.toml")
    (tmp_path / "x.toml").write_text("name = 3\n")
    monkeypatch.setenv("EDGEQ_BOARD_DIR", str(tmp_path))
    res = CliRunner().invoke(cli, ["boards"])
    assert res.exit_code == 1
    assert res.output.count("\n") == 1 and "x.toml" in res.output
