"""The verdict rules of radproof.check on small typed inputs (one test per rule in docs/check.md)."""

from __future__ import annotations

import json

import pytest
from evidence_builders import block, detection, mark, signature_row, signed, unsigned

from radproof.check import Evidence, Policy, ReasonCode, VerdictKind, check, policy_for_profile


def verdict_of(policy: Policy | None = None, **layers: object) -> tuple[VerdictKind, list[str], bool]:
    v = check(Evidence(path="img.dcm", **layers), policy)  # type: ignore[arg-type]
    return v.verdict, [str(r.code) for r in v.reasons], v.passed


def test_all_three_layers_agree_is_authentic() -> None:
    kind, codes, passed = verdict_of(signature=signed(), watermark=mark(), detection=detection("real"))
    assert kind is VerdictKind.AUTHENTIC and passed
    assert codes[:3] == ["signature-trusted", "watermark-intact", "detector-real"]


def test_an_intact_watermark_alone_is_not_authentic_by_default() -> None:
    # A watermark proves that pixels did not change since marking, not who made them.
    kind, codes, _ = verdict_of(watermark=mark(), detection=detection("real"))
    assert kind is VerdictKind.UNVERIFIED and "watermark-intact" in codes
    assert verdict_of(Policy(watermark_authenticates=True), watermark=mark())[0] is VerdictKind.AUTHENTIC


def test_invalid_signature_is_tampered_and_fails_whatever_the_rest_says() -> None:
    kind, codes, passed = verdict_of(
        signature=signed(valid=False, reason="MAC mismatch"), watermark=mark(), detection=detection("real")
    )
    assert kind is VerdictKind.TAMPERED and not passed
    assert codes[0] == "signature-invalid"
    v = check(Evidence(signature=signed(valid=False, reason="MAC mismatch")))
    assert "MAC mismatch" in v.reasons[0].message and "Dr. Ada Tech" in v.reasons[0].message


def test_broken_fragile_mark_is_tampered_and_says_where() -> None:
    blocks = [block(64, 32), block(96, 32)]
    v = check(Evidence(signature=unsigned(), watermark=mark(blocks=blocks), detection=detection("real")))
    assert v.verdict is VerdictKind.TAMPERED and not v.passed
    assert v.reasons[0].code is ReasonCode.WATERMARK_TAMPERED
    assert "2 blocks" in v.reasons[0].message and "rows 64-127" in v.reasons[0].message
    assert "columns 32-63" in v.reasons[0].message


def test_detector_synthetic_without_provenance_is_synthetic() -> None:
    kind, codes, passed = verdict_of(signature=unsigned(), detection=detection("synthetic"))
    assert kind is VerdictKind.SYNTHETIC and not passed
    assert "detector-synthetic" in codes


def test_declared_generation_is_synthetic_even_if_detector_says_real() -> None:
    v = check(Evidence(detection=detection("real"), declared_synthetic="C2PA: trainedAlgorithmicMedia"))
    assert v.verdict is VerdictKind.SYNTHETIC
    assert v.reasons[0].code is ReasonCode.DECLARED_SYNTHETIC


def test_trusted_signature_against_synthetic_detector_is_a_conflict() -> None:
    kind, codes, passed = verdict_of(signature=signed(), detection=detection("synthetic"))
    assert kind is VerdictKind.SUSPECT and passed  # suspect does not fail under the default policy
    assert codes[0] == "conflict"
    kind, _, _ = verdict_of(
        Policy(signature_outweighs_detector=True), signature=signed(), detection=detection("synthetic")
    )
    assert kind is VerdictKind.AUTHENTIC


def test_untrusted_signer_is_suspect_with_why() -> None:
    v = check(
        Evidence(signature=signed(trusted=False, reason="issuer not in trust store"), detection=detection("real"))
    )
    assert v.verdict is VerdictKind.SUSPECT
    assert "not trusted" in v.reasons[0].message and "issuer not in trust store" in v.reasons[0].message


def test_untrusted_but_intact_signature_is_not_tampering_even_if_status_says_invalid() -> None:
    untrusted = signed(trusted=False, reason="certificate expired")
    assert untrusted.status == "invalid"
    kind, codes, _ = verdict_of(signature=untrusted, detection=detection("real"))
    assert kind is VerdictKind.SUSPECT and codes[0] == "signature-untrusted"


def test_signature_that_leaves_pixels_unsigned_is_suspect() -> None:
    kind, codes, _ = verdict_of(signature=signed(unsigned=[0x7FE00010]), detection=detection("real"))
    assert kind is VerdictKind.SUSPECT and "signature-partial" in codes


def test_weak_watermark_is_suspect_and_threshold_is_configurable() -> None:
    kind, codes, _ = verdict_of(watermark=mark(confidence=0.3), detection=detection("real"))
    assert kind is VerdictKind.SUSPECT and "watermark-weak" in codes
    kind, _, _ = verdict_of(
        Policy(min_watermark_confidence=0.2, watermark_authenticates=True), watermark=mark(confidence=0.3)
    )
    assert kind is VerdictKind.AUTHENTIC


def test_robust_mark_alone_shows_origin_not_integrity() -> None:
    kind, codes, _ = verdict_of(watermark=mark(fragile=False), detection=detection("real"))
    assert kind is VerdictKind.UNVERIFIED and "watermark-robust-only" in codes
    # ... and it is no defence: a robust mark can be estimated and copied onto a generated image.
    kind, codes, passed = verdict_of(watermark=mark(fragile=False), detection=detection("synthetic"))
    assert kind is VerdictKind.SYNTHETIC and not passed and "conflict" not in codes


def test_fragile_mark_bound_to_another_image_is_suspect() -> None:
    kind, codes, _ = verdict_of(watermark=mark(binding_ok=False), detection=detection("real"))
    assert kind is VerdictKind.SUSPECT and "watermark-mismatch" in codes


def test_decisive_c2pa_hint_reaches_the_verdict_through_the_gatherer_field() -> None:
    from radproof.detect import Hint

    hint = Hint("c2pa_ai_generated", "decisive", "the C2PA manifest declares trainedAlgorithmicMedia")
    v = check(Evidence(detection=detection("synthetic", hints=(hint,)), declared_synthetic=hint.message))
    assert v.verdict is VerdictKind.SYNTHETIC and v.reasons[0].code is ReasonCode.DECLARED_SYNTHETIC


def test_no_provenance_and_inconclusive_detector_is_unverified() -> None:
    kind, codes, passed = verdict_of(
        signature=unsigned(), watermark=mark(found=False), detection=detection("uncertain")
    )
    assert kind is VerdictKind.UNVERIFIED and passed
    assert "detector-uncertain" in codes and "unsigned" in codes


def test_nothing_at_all_is_unverified_and_says_so() -> None:
    kind, codes, _ = verdict_of()
    assert kind is VerdictKind.UNVERIFIED and codes == ["no-evidence"]


def test_detector_real_alone_is_not_authentic_unless_policy_says_so() -> None:
    assert verdict_of(detection=detection("real"))[0] is VerdictKind.UNVERIFIED
    assert (
        verdict_of(Policy(detector_alone_authenticates=True), detection=detection("real"))[0] is VerdictKind.AUTHENTIC
    )


def test_pacs_profile_requires_a_trusted_signature_and_fails_otherwise() -> None:
    pacs = policy_for_profile("pacs")
    kind, codes, passed = verdict_of(pacs, signature=unsigned(), watermark=mark(), detection=detection("real"))
    assert kind is VerdictKind.SUSPECT and not passed and "signature-required" in codes
    kind, _, passed = verdict_of(pacs, signature=signed(), detection=detection("real"))
    assert kind is VerdictKind.AUTHENTIC and passed


def test_detector_only_profile_ignores_signature_and_watermark() -> None:
    ext = policy_for_profile("detector-only")
    kind, codes, _ = verdict_of(
        ext, signature=signed(valid=False), watermark=mark(blocks=[block(0, 0)]), detection=detection("real")
    )
    assert kind is VerdictKind.UNVERIFIED and codes == ["detector-real"]
    assert verdict_of(ext, signature=signed(), detection=detection("synthetic"))[0] is VerdictKind.SYNTHETIC


def test_thresholds_override_the_detectors_own_verdict() -> None:
    policy = Policy(synthetic_threshold=0.8, real_threshold=0.2)
    assert verdict_of(policy, detection=detection("synthetic", p=0.7))[0] is VerdictKind.UNVERIFIED
    assert verdict_of(policy, detection=detection("uncertain", p=0.85))[0] is VerdictKind.SYNTHETIC


def test_detector_must_agree_turns_uncertain_into_suspect() -> None:
    policy = Policy(detector_must_agree=True)
    assert verdict_of(policy, signature=signed(), detection=detection("uncertain"))[0] is VerdictKind.SUSPECT
    assert verdict_of(policy, signature=signed(), detection=detection("real"))[0] is VerdictKind.AUTHENTIC


def test_layer_errors_are_reported_but_do_not_decide() -> None:
    v = check(Evidence(detection=detection("uncertain"), errors={"watermark": "key does not match"}))
    assert v.verdict is VerdictKind.UNVERIFIED
    assert any(r.code is ReasonCode.LAYER_ERROR and "key does not match" in r.message for r in v.reasons)


def test_fail_on_is_configurable() -> None:
    policy = Policy(fail_on=frozenset({VerdictKind.TAMPERED}))
    assert verdict_of(policy, detection=detection("synthetic"))[2] is True


def test_to_dict_is_json_with_the_documented_fields() -> None:
    v = check(Evidence(path="a.dcm", signature=signed(), watermark=mark(), detection=detection("real")))
    record = json.loads(json.dumps(v.to_dict()))
    assert set(record) >= {"path", "verdict", "passed", "reasons", "reason_codes", "signature", "watermark", "detector"}
    assert record["verdict"] == "authentic" and record["signature"]["status"] == "valid"
    assert record["watermark"]["payload"] == "SITE-A" and record["detector"]["verdict"] == "real"
    assert "path" not in record["signature"]
    assert check(Evidence(path="b.png")).to_dict()["signature"] is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"synthetic_threshold": 1.5},
        {"real_threshold": 0.6, "synthetic_threshold": 0.5},
        {"use_signature": False, "use_watermark": False, "use_detector": False},
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Policy(**kwargs)  # type: ignore[arg-type]


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="pacs"):
        policy_for_profile("hospital")


def test_nothing_anyone_can_add_turns_a_synthetic_verdict_into_a_passing_one() -> None:
    """A generated image with what an attacker can add (alone and combined) still fails."""
    import itertools

    from radproof.provenance.verifier import Integrity

    additions = [
        signature_row(trusted=False),  # a stranger's valid signature
        signature_row(trusted=False, integrity=Integrity.NOT_SIGNERS_KEY),  # a stranger's broken one
        signature_row(integrity=Integrity.NOT_SIGNERS_KEY),  # the trusted certificate, a bogus value
        signature_row(integrity=Integrity.UNVERIFIABLE),
        signature_row(covers=(0x7FE00010,)),  # a trusted signature over the pixels only (copied pixels)
        signature_row(location="IconImageSequence[0]"),  # an item-level signature
    ]
    marks = [None, mark(fragile=False), mark(fragile=False, confidence=0.2), mark(found=False)]
    for count in range(1, 4):
        for rows in itertools.combinations(additions, count):
            for watermark in marks:
                evidence = Evidence(signature=signed(rows=rows), watermark=watermark, detection=detection("synthetic"))
                for policy in (None, policy_for_profile("pacs"), policy_for_profile("legacy")):
                    verdict = check(evidence, policy)
                    assert not verdict.passed, (rows, watermark, verdict.verdict)


def test_a_strangers_broken_signature_is_suspect_never_tampered() -> None:
    from radproof.provenance.verifier import Integrity

    for integrity in (Integrity.DATA_CHANGED, Integrity.NOT_SIGNERS_KEY, Integrity.UNVERIFIABLE):
        genuine = signature_row()
        stranger = signature_row(trusted=False, integrity=integrity)
        kind, codes, _ = verdict_of(signature=signed(rows=(genuine, stranger)))
        assert kind is VerdictKind.SUSPECT and "untrusted-invalid-signature" in codes


def test_a_trusted_signature_that_changed_is_tampered_unless_another_covers_everything() -> None:
    from radproof.provenance.verifier import Integrity

    old = signature_row(integrity=Integrity.DATA_CHANGED)
    assert verdict_of(signature=signed(rows=(old,)))[0] is VerdictKind.TAMPERED
    kind, codes, _ = verdict_of(signature=signed(rows=(old, signature_row())))
    assert kind is VerdictKind.SUSPECT and "signature-superseded" in codes


def test_a_watermark_vouches_for_a_dicom_header_only_when_it_binds_it() -> None:
    opt_in = Policy(watermark_authenticates=True)
    dicom = {"has_header": True, "detection": detection("real")}
    # A mark from before header binding (header_bound None) proves the pixels, never the header.
    v = check(Evidence(watermark=mark(), **dicom), opt_in)  # type: ignore[arg-type]
    assert v.verdict is VerdictKind.UNVERIFIED and "vouches for the pixels only" in v.reasons[0].message
    assert check(Evidence(watermark=mark(header_bound=True), **dicom), opt_in).verdict is VerdictKind.AUTHENTIC  # type: ignore[arg-type]
    edited = check(Evidence(watermark=mark(header_bound=False), **dicom), opt_in)  # type: ignore[arg-type]
    assert edited.verdict is VerdictKind.SUSPECT and edited.reasons[0].code is ReasonCode.WATERMARK_HEADER_CHANGED


def test_a_fragile_layer_that_should_be_there_and_is_not_is_suspect_never_unverified() -> None:
    gone = mark(fragile=False, fragile_expected=True, content_match=True)
    kind, codes, _ = verdict_of(watermark=gone, detection=detection("uncertain"))
    assert kind is VerdictKind.SUSPECT and "watermark-fragile-missing" in codes
    header_only = mark(found=False, fragile_expected=True)
    kind, codes, _ = verdict_of(watermark=header_only, detection=detection("uncertain"))
    assert kind is VerdictKind.SUSPECT and "watermark-fragile-missing" in codes


def test_a_robust_mark_that_does_not_match_its_image_is_a_copy_and_counts_for_nothing() -> None:
    copied = mark(fragile=False, content_match=False)
    kind, codes, _ = verdict_of(watermark=copied, detection=detection("uncertain"))
    assert kind is VerdictKind.SUSPECT and codes[0] == "watermark-copied"
    kind, _, passed = verdict_of(watermark=copied, detection=detection("synthetic"))
    assert kind is VerdictKind.SYNTHETIC and not passed
    # Even an intact-looking fragile layer does not rescue a mark that is not this image's.
    kind, codes, _ = verdict_of(Policy(watermark_authenticates=True), watermark=mark(content_match=False))
    assert kind is VerdictKind.SUSPECT and "watermark-copied" in codes


def test_coded_values_are_validated_where_they_are_made() -> None:
    from radproof.check import Layer, Reason, ReasonCode, Verdict

    reason = Reason("unsigned", "not signed", "signature")  # type: ignore[arg-type]
    assert reason.code is ReasonCode.UNSIGNED and reason.layer is Layer.SIGNATURE
    with pytest.raises(ValueError):
        Reason("looks-fine", "trust me")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Verdict(None, "probably-real", (), True, Evidence())  # type: ignore[arg-type]
    assert Verdict(None, "tampered", (), False, Evidence()).verdict is VerdictKind.TAMPERED  # type: ignore[arg-type]
