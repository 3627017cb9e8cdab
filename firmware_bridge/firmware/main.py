"""The door board's entry point on a Raspberry Pi Pico (MicroPython); never run on CPython.

It only wires board.Board to the pins, the UART and the clock; the behaviour lives in board.py,
which the simulator runs too. Pinout and flashing: README.md next to this file.
"""

import machine
import utime
from board import Board, FlashStore, Pins

UART_ID, UART_TX, UART_RX, BAUD = 0, 0, 1, 115200
RELAY_PIN = 15  # high = relay energised = unlocked (fail-secure strike)
DOOR_PIN, EXIT_PIN, TAMPER_PIN = 2, 3, 4  # to GND through a switch; internal pull-ups
JUMPER_PIN = 5  # provisioning jumper inside the case, to GND: closed = a new key is accepted
KEY_FILE = "doorlink.key"  # the wire's key and the session high-water mark (board.FlashStore)
ROW_PINS = (6, 7, 8, 9)
COL_PINS = (10, 11, 12)
KEYMAP = ("123", "456", "789", "*0#")
WATCHDOG_MS = 1000  # a hung loop resets the chip; the relay pin floats low (pull-down) meanwhile

# Drive the relay low before anything else can fail, and keep it module-level for the finally.
relay = machine.Pin(RELAY_PIN, machine.Pin.OUT, value=0)


def pulled_up(n):
    return machine.Pin(n, machine.Pin.IN, machine.Pin.PULL_UP)


def keypad_scanner():
    """Returns a function giving the key held down on the 3x4 matrix, or ""."""
    rows = [machine.Pin(n, machine.Pin.OUT, value=1) for n in ROW_PINS]
    cols = [pulled_up(n) for n in COL_PINS]

    def key():
        for r, row in enumerate(rows):
            row.value(0)
            for c, col in enumerate(cols):
                if col.value() == 0:
                    row.value(1)
                    return KEYMAP[r][c]
            row.value(1)
        return ""

    return key


def main():
    door, exit_button, tamper = pulled_up(DOOR_PIN), pulled_up(EXIT_PIN), pulled_up(TAMPER_PIN)
    jumper = pulled_up(JUMPER_PIN)
    pins = Pins(
        # The reed contact is closed (to GND) while the door is shut, so a cut wire reads "open".
        door_open=lambda: door.value() == 1,
        exit_pressed=lambda: exit_button.value() == 0,
        tamper=lambda: tamper.value() == 1,  # the case switch is closed while the lid is on
        key=keypad_scanner(),
        set_relay=lambda unlocked: relay.value(1 if unlocked else 0),
        provision_jumper=lambda: jumper.value() == 0,
    )
    uart = machine.UART(UART_ID, baudrate=BAUD, tx=machine.Pin(UART_TX), rx=machine.Pin(UART_RX))
    wdt = machine.WDT(timeout=WATCHDOG_MS)
    # ticks_ms wraps; board.py wants a clock that never does, so accumulate the differences.
    now, last = 0, utime.ticks_ms()
    board = Board(pins, now_ms=now, store=FlashStore(KEY_FILE))
    while True:
        t = utime.ticks_ms()
        now += utime.ticks_diff(t, last)
        last = t
        board.tick(now)
        n = uart.any()
        if n:
            board.receive(uart.read(n))
        out = board.take_output()
        if out:
            uart.write(out)
        wdt.feed()
        utime.sleep_ms(1)


try:
    main()
finally:
    relay.value(0)  # an exception stops the loop: lock, then the watchdog resets the board
