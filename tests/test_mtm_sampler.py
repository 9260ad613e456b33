"""DPM-Solver++ 2M on Gaussian data, where the exact denoiser is known in closed form."""
import numpy as np

from cuesmith.engine.pipelines.mtm.sampler import alpha_sigma, sample


def gaussian_denoiser(calls=None):
    """E[x0 | x_t] for x0 ~ N(mu, s^2) per dimension; cond = (mu, s)."""
    def denoise(x, t, cond):
        if calls is not None:
            calls.append(cond)
        mu, s = cond
        alpha, sigma = alpha_sigma(t)
        return mu + alpha * s * s / (alpha * alpha * s * s + sigma * sigma) * (x - alpha * mu)
    return denoise


def test_samples_match_the_data_distribution():
    out = sample(gaussian_denoiser(), (20_000, 2), cond=(1.5, 0.5), steps=12, seed=3)
    assert abs(out.mean() - 1.5) < 0.02
    assert abs(out.std() - 0.5) < 0.02


def test_guidance_one_is_the_conditional_path_alone():
    calls = []
    guided = sample(gaussian_denoiser(calls), (64, 4), cond=(1.0, 0.3), null=(0.0, 1.0), guidance=1.0, seed=5)
    assert all(c == (1.0, 0.3) for c in calls)
    alone = sample(gaussian_denoiser(), (64, 4), cond=(1.0, 0.3), seed=5)
    np.testing.assert_array_equal(guided, alone)


def test_guidance_pushes_away_from_the_null_condition():
    cond, null = (1.0, 0.3), (0.0, 0.3)
    plain = sample(gaussian_denoiser(), (4000, 2), cond, null, guidance=1.0, seed=1)
    pushed = sample(gaussian_denoiser(), (4000, 2), cond, null, guidance=3.0, seed=1)
    assert pushed.mean() > plain.mean() + 0.5


def test_same_seed_same_samples_other_seed_differs():
    a = sample(gaussian_denoiser(), (8, 3), (0.0, 1.0), seed=7)
    b = sample(gaussian_denoiser(), (8, 3), (0.0, 1.0), seed=7)
    c = sample(gaussian_denoiser(), (8, 3), (0.0, 1.0), seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_converges_to_the_exact_transport_map():
    """For Gaussian data the probability-flow ODE is linear: noise z at t = 1 ends at mu + s z."""
    z = np.random.default_rng(3).standard_normal((500, 2)).astype(np.float32)
    errors = [np.abs(sample(gaussian_denoiser(), z.shape, (1.5, 0.2), steps=n, seed=3) - (1.5 + 0.2 * z)).max()
              for n in (12, 24, 48)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.01, errors
