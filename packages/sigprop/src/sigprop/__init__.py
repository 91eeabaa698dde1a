"""sigprop: signal-propagation theory for transformers without shortcuts (float64 numpy).

Target kernels, SPA (signal-preserving attention) bias and rescaling matrices, depth schedules, TAT leaky-ReLU
slopes and kernel maps, whole-network predictions, and empirical kernel statistics.
"""

from sigprop.espa import EspaCoefficients, espa_attention, espa_coefficients, espa_log_bias, espa_row_scale
from sigprop.kernels import (
    KernelStats,
    attention_to_bias_scale,
    cosine_by_distance,
    cosine_from_kernel,
    exponential_kernel,
    kernel_stats,
    mean_offdiag,
    spa_matrix,
    uniform_kernel,
)
from sigprop.uspa import (
    uspa_attention,
    uspa_cholesky,
    uspa_cholesky_inverse,
    uspa_log_bias,
    uspa_row_scale,
    uspa_vectors,
)
from sigprop.kinds import (
    ATTENTION_KINDS,
    KERNEL_BUDGETS,
    MLP_ACTIVATIONS,
    SPA_KINDS,
    AttentionKind,
    KernelBudget,
    MlpActivation,
    SpaKind,
)
from sigprop.network import (
    DEFAULT_ETA,
    DEFAULT_GAMMA_FINAL,
    DEFAULT_RHO_FINAL,
    TAT_PRESET,
    attention_at_init,
    predicted_final_cosine,
    uniform_causal_attention,
)
from sigprop.residual import predict_residual_kernels, residual_branch_weight, residual_target_cosine
from sigprop.schedules import check_espa_gammas, espa_gammas, uspa_rhos
from sigprop.spa import SPALayer, final_mean_cosine, predict_kernels, spa_layers, spa_levels
from sigprop.tat import (
    composed_cmap,
    gelu,
    leaky_relu_cmap,
    leaky_relu_kernel_map,
    mlp_kernel_map,
    quadrature_kernel_map,
    relu_cmap,
    tat_scale,
    tat_slope,
)

__all__ = [
    "ATTENTION_KINDS",
    "AttentionKind",
    "KERNEL_BUDGETS",
    "KernelBudget",
    "MLP_ACTIVATIONS",
    "MlpActivation",
    "SPA_KINDS",
    "SpaKind",
    "DEFAULT_ETA",
    "DEFAULT_GAMMA_FINAL",
    "DEFAULT_RHO_FINAL",
    "EspaCoefficients",
    "KernelStats",
    "SPALayer",
    "TAT_PRESET",
    "attention_at_init",
    "attention_to_bias_scale",
    "check_espa_gammas",
    "composed_cmap",
    "cosine_by_distance",
    "cosine_from_kernel",
    "espa_attention",
    "espa_coefficients",
    "espa_gammas",
    "espa_log_bias",
    "espa_row_scale",
    "exponential_kernel",
    "final_mean_cosine",
    "gelu",
    "kernel_stats",
    "leaky_relu_cmap",
    "leaky_relu_kernel_map",
    "mean_offdiag",
    "mlp_kernel_map",
    "predict_kernels",
    "predicted_final_cosine",
    "predict_residual_kernels",
    "quadrature_kernel_map",
    "relu_cmap",
    "residual_branch_weight",
    "residual_target_cosine",
    "spa_layers",
    "spa_levels",
    "spa_matrix",
    "tat_scale",
    "tat_slope",
    "uniform_causal_attention",
    "uniform_kernel",
    "uspa_attention",
    "uspa_cholesky",
    "uspa_cholesky_inverse",
    "uspa_log_bias",
    "uspa_rhos",
    "uspa_row_scale",
    "uspa_vectors",
]
