"""The procedural renderer: prompt parsing, determinism, motion, looks, styles, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from generation import vocab
from generation.procedural import (
    DEFAULT_FIGURE,
    DEFAULT_SCENE,
    action_for,
    parse_action,
    parse_figure,
    parse_scene,
    render_clip,
)
from generation.prompts import Label, compose_prompt, make_prompts

LABELS = [Label(i, a.name) for i, a in enumerate(vocab.ACTIONS)]


def test_template_prompts_parse_back_to_their_row():
    """Every class x environment x character template prompt reads back as itself."""
    for i, action in enumerate(vocab.ACTIONS):
        for e, env in enumerate(vocab.ENVIRONMENTS):
            for char in vocab.CHARACTERS:
                prompt = compose_prompt(action.name, "ie", env, char)
                assert parse_action(prompt) == i, prompt
                assert parse_scene(prompt)[1] == e, prompt
                assert parse_figure(prompt) == parse_figure(char.text), prompt


def test_vocab_looks_are_distinct_and_basic_is_default():
    looks = {parse_figure(c.text) for c in vocab.CHARACTERS}
    assert len(looks) == len(vocab.CHARACTERS) and DEFAULT_FIGURE not in looks
    assert parse_figure("A person is waving.") == DEFAULT_FIGURE
    assert parse_scene("A person is waving.") == (DEFAULT_SCENE, None)
    assert parse_figure("a tall man in a red shirt").height > parse_figure("a small child in a red shirt").height
    assert parse_figure("a heavy man").width > parse_figure("a thin man").width


def test_unknown_phrases_map_stably():
    a, idx = parse_scene("A person is jumping in a crowded train station.")
    assert idx is None and a != DEFAULT_SCENE
    assert parse_scene("Someone jumps in a crowded train station, slowly.")[0] == a
    assert parse_scene("A person is jumping in a quiet library.")[0] != a
    assert parse_figure("a firefighter in full gear") != DEFAULT_FIGURE
    assert action_for("a person doing something odd", hint="ApplyEyeMakeup") == action_for("x", hint="ApplyEyeMakeup")


def test_deterministic_per_seed():
    p = make_prompts(LABELS, "ie", videos_per_class=1)[0].prompt
    a, b = render_clip(p, 7), render_clip(p, 7)
    assert a.dtype == np.uint8 and a.shape == (16, 64, 64, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, render_clip(p, 8))
    np.testing.assert_array_equal(render_clip(p, 3, style="real"), render_clip(p, 3, style="real"))


def _figure_stats(clip: np.ndarray) -> np.ndarray:
    """Per-frame bounding box (x0, y0, x1, y1) of non-background pixels, on a plain background."""
    mask = np.abs(clip.astype(int) - clip[0, 0, 0]).sum(-1) > 30
    boxes = []
    for m in mask:
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max(), ys.max()])
    return np.array(boxes, dtype=float)


def test_actions_move_differently():
    """Bounding-box trajectories of the default figure separate the actions."""
    feats = {}
    for a in vocab.ACTIONS:
        boxes = _figure_stats(render_clip(f"A person is {a.ing}.", 5, num_frames=16))
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        feats[a.name] = np.array([w.max(), w.min(), h.max(), h.min(), np.ptp(boxes[:, 0]), boxes[:, 1].min()])
    assert feats["walking"][4] > 12  # travels across the frame
    assert (
        feats["jumping"][5] < feats["waving"][5] + 12
        and np.ptp(_figure_stats(render_clip("A person is jumping.", 5))[:, 3]) > 4
    )  # feet leave the ground
    assert feats["squatting"][3] < feats["squatting"][2] - 5  # gets shorter
    assert feats["kicking"][0] > feats["bowing"][1]
    names = list(feats)
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            assert np.abs(feats[x] - feats[y]).max() >= 2, (x, y, feats[x], feats[y])


def test_motion_energy_nonzero_for_every_action():
    for a in vocab.ACTIONS:
        clip = render_clip(f"A person is {a.ing}.", 11).astype(float)
        assert np.abs(np.diff(clip, axis=0)).mean() > 0.05, a.name


def test_environment_changes_background_and_character_changes_figure():
    base = render_clip("A person is clapping.", 1)
    beach = render_clip("A person is clapping on a sunny beach.", 1)
    night = render_clip("A person is clapping in a park at night.", 1)
    corner = (slice(None), slice(0, 6), slice(0, 6))
    assert np.abs(base[corner].astype(int) - beach[corner]).mean() > 20
    assert np.abs(beach[corner].astype(int) - night[corner]).mean() > 20
    assert len(np.unique(base[0].reshape(-1, 3), axis=0)) < len(np.unique(beach[0].reshape(-1, 3), axis=0))
    red = render_clip("A tall man in a red shirt is clapping.", 1)
    assert ((red[..., 0] > 150) & (red[..., 1] < 80)).sum() > 50
    assert ((base[..., 0] > 150) & (base[..., 1] < 80)).sum() == 0


def test_real_style_differs_from_synthetic():
    p = "A person is waving on a sunny beach."
    syn, real = render_clip(p, 2), render_clip(p, 2, style="real")
    assert syn.shape == real.shape
    # Synthetic is flat (few colours, static background); real is noisy and jittered.
    assert len(np.unique(syn[0].reshape(-1, 3), axis=0)) * 4 < len(np.unique(real[0].reshape(-1, 3), axis=0))
    corner = (slice(None), slice(0, 8), slice(0, 8))
    assert np.abs(np.diff(syn[corner].astype(float), axis=0)).mean() == 0
    assert np.abs(np.diff(real[corner].astype(float), axis=0)).mean() > 1
    with pytest.raises(ValueError, match="unknown style"):
        render_clip(p, 2, style="cartoon")


def test_fast():
    prompts = [r.prompt for r in make_prompts(LABELS, "ie", videos_per_class=2)]
    render_clip(prompts[0], 0)
    start = time.perf_counter()
    for i, p in enumerate(prompts):
        render_clip(p, i)
    per_clip = (time.perf_counter() - start) / len(prompts)
    assert per_clip < 0.1, per_clip


def test_unreliable_clip_shows_other_motions_on_the_same_scene():
    """A failed generation: same scene and look, but incoherent motion (each frame a pose of another action)."""
    for a in vocab.ACTIONS:
        prompt = f"A person is {a.ing} on a sunny beach."
        good, bad = render_clip(prompt, 4), render_clip(prompt, 4, unreliable=True)
        np.testing.assert_array_equal(bad, render_clip(prompt, 4, unreliable=True))  # deterministic
        corner = (slice(None), slice(0, 6), slice(0, 6))
        np.testing.assert_array_equal(good[corner], bad[corner])  # background untouched
        assert np.abs(good.astype(int) - bad).mean() > 0.5, a.name  # the figure moves differently

    # Incoherent: the figure jumps between poses, so consecutive frames differ more than in a real action.
    def jerk(clip):
        return float(np.abs(np.diff(_figure_stats(clip), axis=0)).mean())

    for a in vocab.ACTIONS:
        prompt = f"A person is {a.ing}."
        assert jerk(render_clip(prompt, 1, unreliable=True)) > jerk(render_clip(prompt, 1)), a.name
