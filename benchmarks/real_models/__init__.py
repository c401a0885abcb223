"""saddlescope against PyHessian, hessian-eigenthings and curvlinops on real models.

    python -m benchmarks.real_models [--quick] [--repeats N] [--json PATH]

Three models, random init (seeded), float32, CPU, one torch thread, one process (section 3 starts
one fresh subprocess per configuration), each fed the way its users hold it:

    BERT   HF BertForSequenceClassification (25,795 parameters), dict batches with padding, its
           own loss (``Objective(model, None, batches)``);
    GPT-2  HF GPT2LMHeadModel (24,576 parameters, tied embeddings), dict batches, its own causal
           LM loss, batches weighted by predicted tokens (no padding, so every anchor's batch
           averaging gives the same objective);
    CNN    a ResNet-20 (269,722 parameters, BatchNorm in eval mode) on CIFAR-shaped (3×32×32)
           random images, 10 classes, ``(x, y)`` batches and ``nn.CrossEntropyLoss``.

Printed, and written as JSON (``--json``, default results/real_models.json):

1. one gradient (plain autograd, ``loss.backward()`` over the batches: the unit) and one HVP,
   median of repeats after a warm-up, every method once per round (interleaved, so that drifts
   of a shared machine fall on all alike), glibc's malloc thresholds fixed (see
   ``timing.steady_allocator``): ours (``obj.hessian_operator(θ) @ v``, cached graphs),
   PyHessian's batch mode (all data as its one batch: its cached-graph product) and its
   dataloader mode (a fresh double backward per batch), hessian-eigenthings' ``HessianOperator``
   and curvlinops' ``HessianLinearOperator``, with each product's agreement with ours;
2. λ_max and λ_min to 1e-3 relative accuracy against saddlescope's ARPACK at tol 1e-10 in
   float64 (``--quick``: 1e-7 in float32): the smallest budget that reaches it, its HVPs and
   seconds (set-up included).
   Ours: ``hessian_spectrum(method="lanczos")`` on a ``lanczos_tol`` ladder. PyHessian: power
   iteration (``eigenvalues(maxIter=m, tol=0)``, batch mode): one long run records the Rayleigh
   quotient of every iteration (what ``maxIter=m`` returns), then ``m`` is timed; also its
   defaults (``maxIter=100, tol=1e-3``), and which end of the spectrum its "top" eigenvalue is —
   it ranks by |λ|; it has no smallest-eigenvalue method. hessian-eigenthings: one
   ``lanczos_tridiagonal`` run with full re-orthogonalisation gives the Ritz values of every
   prefix (what ``lanczos(max_iter=m, reorthogonalize=True)`` returns), then ``m`` is timed.
   curvlinops: SciPy ``eigsh`` on ``to_scipy()`` on a ``tol`` ladder;
3. peak memory (VmHWM of a fresh process after one gradient and two HVPs; ``ru_maxrss`` would
   start from this process's peak, inherited across fork+exec on Linux) on the CNN
   for 1×, 4× and 16× the data, from a loader that generates its batches on the fly (the data
   is never all in memory): ours streamed (``hold_data=False``) at the default memory budget and
   at 256 MiB, ours held, and PyHessian's dataloader mode.

The HF models run their default (SDPA) attention. Ours needs nothing more; the anchors fail on it
(no double backward / forward AD of the fused kernel: the message is recorded) and are run inside
``torch.nn.attention.sdpa_kernel(SDPBackend.MATH)``. How each anchor is given the HF models:
hessian-eigenthings through its HF helper ``hf_lm_loss()`` (``model(**batch).loss``), unchanged;
PyHessian and curvlinops, which take ``(inputs, targets)`` and a criterion, through a wrapper
whose ``forward(inputs)`` returns ``model(**inputs).logits`` with the labels as targets (for
PyHessian's loader mode the inputs are a dict with ``size()`` and ``to()``), with
``nn.CrossEntropyLoss`` (BERT) or a shifted causal-LM cross-entropy (GPT-2). ``--quick``: less
data, lower caps (≈3 min). Timings on a shared 2-core machine are noisy: the load is printed.
"""
