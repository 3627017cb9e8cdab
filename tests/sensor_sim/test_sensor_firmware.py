"""The sensor's firmware model answers any packet sequence with a confirmation code and never
raises: whatever a host sends, the simulated sensor stays alive."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.zfm import DEFAULT_ADDRESS, MAX_PAYLOAD, Instruction, Packet, Pid
from hardware_sim.fingers import impression
from hardware_sim.sensor_firmware import MAX_DOWNLOAD, Matching, SensorFirmware, Timing

instructions = st.one_of(st.sampled_from([int(i) for i in Instruction]), st.integers(0, 255))
payloads = st.tuples(instructions, st.binary(max_size=12)).map(lambda t: bytes([t[0]]) + t[1])
packets = st.one_of(
    st.builds(Packet, st.just(DEFAULT_ADDRESS), st.just(Pid.COMMAND), payloads),
    st.builds(Packet, st.sampled_from([DEFAULT_ADDRESS, 0]), st.sampled_from(list(Pid)),
              st.binary(max_size=MAX_PAYLOAD)),
)


@settings(deadline=None, max_examples=60)
@given(st.lists(packets, max_size=25), st.sampled_from([0, 0x1234]), st.booleans())
def test_any_packet_sequence_gets_well_formed_answers(sent: list[Packet], password: int,
                                                      finger_on_glass: bool) -> None:
    fw = SensorFirmware(capacity=5, password=password, address=DEFAULT_ADDRESS,
                        baud_multiplier=6, packet_size=32, timing=Timing(),
                        matching=Matching(false_accept_rate=0.5, false_reject_rate=0.5))
    fw.on_glass = impression("alice-index", 0) if finger_on_glass else None
    for packet in sent:
        answer = fw.answer(packet)
        if packet.pid == Pid.COMMAND and packet.payload:
            assert answer is not None
            assert 0 <= answer.code <= 0xFF
            assert len(answer.data) < MAX_PAYLOAD
            assert answer.transfer is None or len(answer.transfer) <= 256 * 288 // 2
        else:
            assert answer is None
        assert all(len(b) <= MAX_DOWNLOAD for b in fw.buffers.values())
        assert all(0 <= slot < fw.capacity for slot in fw.library)
