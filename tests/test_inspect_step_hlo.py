"""bench/inspect_step_hlo.py: the op counts of an optimised HLO text."""

import pytest

#: Lines of XLA's optimised HLO: tuple-shaped results (with spaces) beside array-shaped ones.
HLO = """\
ENTRY %main.5 (Arg_0.1: f32[8,16]) -> f32[8,16] {
  %tuple.3 = (s32[], f32[8,16]{1,0}) tuple(%constant.2, %Arg_0.1)
  %while.4 = (s32[], u32[2]{0}, /*index=2*/(f32[8,16]{1,0}, f32[]), u32[]) while(%tuple.3), \
condition=%cond.1, body=%body.2, metadata={op_name="jit(f)/while"}
  %custom-call.7 = (f32[8,16,4]{2,1,0}, u8[1024]{0}) custom-call(%a, %b), \
custom_call_target="__cudnn$convForward"
  %convolution.8 = f32[8,16,4]{2,1,0:T(8,128)} convolution(%a, %b), window={size=3}
  ROOT %dot.9 = f32[8,16]{1,0} dot(%x, %y), lhs_contracting_dims={1}
}
"""


@pytest.fixture(scope="module")
def inspector(bench_script):
    return bench_script("inspect_step_hlo")


def test_ops_with_tuple_shaped_results_are_counted(inspector):
    assert inspector.op_counts(HLO) == {"convolution": 1, "custom-call": 1, "dot": 1, "while": 1}
