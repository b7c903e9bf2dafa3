// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Privacy accounting for DP federated rounds: Renyi differential privacy (RDP) of the sampled
// Gaussian mechanism, composed over rounds and converted to (epsilon, delta).
//
// Mechanism. Each round samples every client independently with probability q (Poisson
// sampling) and releases the sum of clipped updates plus N(0, (sigma*C)^2) noise
// (fl/privacy.h). Mironov, Talwar and Zhang, "Renyi Differential Privacy of the Sampled Gaussian
// Mechanism" (2019), show its RDP at order alpha > 1 is
//   eps_RDP(alpha) = log(A_alpha) / (alpha - 1),
//   A_alpha = E_{z ~ N(0, sigma^2)} [ ((1 - q) + q * exp((2z - 1) / (2 sigma^2)))^alpha ].
// For integer alpha the binomial theorem gives the closed form (their Sec. 3.3)
//   A_alpha = sum_{k=0}^{alpha} C(alpha, k) (1-q)^(alpha-k) q^k exp((k^2 - k) / (2 sigma^2)),
// which we sum in log space (lgamma for the binomials, log-sum-exp for the sum) so that large
// orders and small sigma do not overflow. For fractional alpha we evaluate the expectation
// directly: the log integrand is a Gaussian log-density plus alpha * log((1-q) + q e^t), all
// computed in log space, integrated by the trapezoidal rule on a grid of step
// min(sigma, sigma^2)/32 (at most 2^22 points) covering [-14 sigma, max(alpha, 1) + 14 sigma].
// The log integrand's slope is at most (alpha - z)/sigma^2 above and at least -z/sigma^2 below,
// so its peak lies in [0, alpha] and it falls at least like a Gaussian of width sigma outside:
// the tails beyond the grid are below e^-98 of the peak, and the trapezoidal rule converges
// exponentially fast for such smooth, decaying integrands. Precision: log(A) is accurate to
// about 1e-13 absolute, so for tiny q and large sigma (A - 1 below ~1e-9) the per-step RDP of
// fractional orders has a relative error that grows as A - 1 shrinks (integer orders do not). Tests
// check both paths against each other at integer orders and against published values.
//
// Composition. RDP adds over rounds at each fixed order, so the accountant keeps one running sum
// per order and Step() adds that round's RDP (rounds may use different q and sigma).
//
// Conversion. Epsilon(delta) uses the tighter conversion of Canonne, Kamath and Steinke, "The
// Discrete Gaussian for Differential Privacy" (2020), Prop. 12 (also Asoodeh et al. 2020), as in
// Google's dp_accounting library:
//   eps = min_alpha [ rdp(alpha) + log1p(-1/alpha) - (log(delta) + log(alpha)) / (alpha - 1) ].
// EpsilonClassic(delta) is Mironov's original (2017, Prop. 3) bound
//   eps = min_alpha [ rdp(alpha) + log(1/delta) / (alpha - 1) ],
// which is always >= the tighter one and is what older TF Privacy versions report.
#ifndef HML_SRC_FL_ACCOUNTANT_H_
#define HML_SRC_FL_ACCOUNTANT_H_

#include <cstdint>
#include <span>
#include <vector>

#include "hml/status.h"

namespace hml::fl {

// RDP at order `alpha` of one application of the sampled Gaussian mechanism with sampling
// probability `q` and noise multiplier `sigma`. Integer orders use the binomial expansion,
// others numerical integration. Returns +infinity when sigma == 0 and q > 0, 0 when q == 0.
// REQUIRES: 0 <= q <= 1, sigma >= 0, alpha > 1.
double SampledGaussianRdp(double q, double sigma, double alpha);

// The same quantity always by numerical integration (exposed for tests of the two paths).
double SampledGaussianRdpByIntegration(double q, double sigma, double alpha);

// Which RDP -> (epsilon, delta) conversion to use (see the file comment).
enum class RdpConversion {
  kTight,    // Canonne, Kamath, Steinke 2020, Prop. 12.
  kClassic,  // Mironov 2017, Prop. 3.
};

// Smallest epsilon over `orders` given the RDP curve `rdp` (aligned with orders). When
// `optimal_order` is non-null it receives the order attaining it. NaN unless 0 < delta < 1 and
// the spans have the same length.
double EpsilonFromRdp(std::span<const double> orders, std::span<const double> rdp, double delta,
                      RdpConversion conversion, double* optimal_order = nullptr);

// The orders the accountant tracks by default: 1.25 to 10 in steps of 0.25 (fractional orders
// matter for large sigma), the integers 11..64, and 80, 96, 128, 256, 512.
std::vector<double> DefaultRdpOrders();

class RdpAccountant {
 public:
  // Tracks the default orders.
  RdpAccountant();
  // Tracks `orders`; each must be finite and > 1 (checked by Create()).
  static Result<RdpAccountant> Create(std::vector<double> orders);

  // Composes one round of the sampled Gaussian mechanism with sampling probability q in [0, 1]
  // and noise multiplier sigma >= 0. Consecutive identical (q, sigma) reuse the computed RDP.
  Status Step(double q, double sigma);
  // Composes `count` identical rounds at once (same result as calling Step() count times).
  Status Steps(double q, double sigma, int64_t count);

  // Smallest epsilon such that the composed rounds are (epsilon, delta)-DP, with the tighter
  // conversion above. 0 before any step. REQUIRES: 0 < delta < 1 (returns NaN otherwise).
  double Epsilon(double delta) const;
  // Same with the classic conversion eps = rdp + log(1/delta)/(alpha-1).
  double EpsilonClassic(double delta) const;
  // The order that attains Epsilon(delta) (the last, tighter conversion).
  double OptimalOrder(double delta) const;

  const std::vector<double>& orders() const { return orders_; }
  // Composed RDP per order, aligned with orders().
  const std::vector<double>& rdp() const { return rdp_; }
  int64_t steps() const { return steps_; }

 private:
  explicit RdpAccountant(std::vector<double> orders);

  std::vector<double> orders_;
  std::vector<double> rdp_;
  int64_t steps_ = 0;
  // Per-order RDP of the last (q, sigma), reused while rounds repeat.
  double cached_q_ = -1.0;
  double cached_sigma_ = -1.0;
  std::vector<double> cached_rdp_;
};

}  // namespace hml::fl

#endif  // HML_SRC_FL_ACCOUNTANT_H_
