// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/fl/accountant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>

namespace hml::fl {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// log(exp(a) + exp(b)) without overflow; -inf is the log of zero.
double LogAdd(double a, double b) {
  if (a == -kInf) return b;
  if (b == -kInf) return a;
  const double hi = std::max(a, b);
  return hi + std::log1p(std::exp(std::min(a, b) - hi));
}

double LogBinomial(double n, double k) {
  return std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0);
}

bool IsInteger(double x) { return x == std::floor(x) && x < 1e9; }

// Shared edge cases of both paths; returns true and sets *out when one applies.
bool EdgeCase(double q, double sigma, double alpha, double* out) {
  if (q == 0.0) {
    *out = 0.0;
    return true;
  }
  if (sigma == 0.0) {
    *out = kInf;
    return true;
  }
  if (q == 1.0) {
    // Plain Gaussian mechanism with sensitivity 1: alpha / (2 sigma^2).
    *out = alpha / (2.0 * sigma * sigma);
    return true;
  }
  return false;
}

// log(A_alpha) for integer alpha by the binomial expansion, in log space.
double LogAIntegerOrder(double q, double sigma, int64_t alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  const double two_var = 2.0 * sigma * sigma;
  double log_a = -kInf;
  for (int64_t k = 0; k <= alpha; ++k) {
    const double kd = static_cast<double>(k);
    const double term = LogBinomial(static_cast<double>(alpha), kd) +
                        static_cast<double>(alpha - k) * log_1mq + kd * log_q +
                        (kd * kd - kd) / two_var;
    log_a = LogAdd(log_a, term);
  }
  return log_a;
}

// log(A_alpha) by trapezoidal integration of the log integrand (see the header for the grid).
double LogAByIntegration(double q, double sigma, double alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  const double var = sigma * sigma;
  const double log_norm = -std::log(sigma * std::sqrt(2.0 * std::numbers::pi));
  const double lo = -14.0 * sigma;
  const double hi = std::max(alpha, 1.0) + 14.0 * sigma;
  // The step resolves both the Gaussian (width sigma) and the switch of log((1-q) + q e^t) from
  // log(1-q) to log(q) + t (width sigma^2 in z); at most 2^22 points.
  double h = std::min(sigma, var) / 32.0;
  h = std::max(h, (hi - lo) / 4194304.0);
  const int64_t n = static_cast<int64_t>(std::ceil((hi - lo) / h));
  h = (hi - lo) / static_cast<double>(n);
  // Streaming log-sum-exp: `sum` is the sum of exp(f - running_max).
  double running_max = -kInf;
  double sum = 0.0;
  for (int64_t i = 0; i <= n; ++i) {
    const double z = lo + h * static_cast<double>(i);
    const double t = (2.0 * z - 1.0) / (2.0 * var);
    const double f = log_norm - z * z / (2.0 * var) + alpha * LogAdd(log_1mq, log_q + t);
    const double w = (i == 0 || i == n) ? 0.5 : 1.0;
    if (f > running_max) {
      sum = sum * std::exp(running_max - f) + w;
      running_max = f;
    } else {
      sum += w * std::exp(f - running_max);
    }
  }
  return running_max + std::log(sum) + std::log(h);
}

Status CheckStep(double q, double sigma) {
  if (!(q >= 0.0 && q <= 1.0)) {
    return InvalidArgumentError("RDP accountant: sampling probability q must be in [0, 1], got " +
                                std::to_string(q));
  }
  if (!(sigma >= 0.0) || !std::isfinite(sigma)) {
    return InvalidArgumentError(
        "RDP accountant: noise multiplier sigma must be finite and >= 0, got " +
        std::to_string(sigma));
  }
  return Status::Ok();
}

}  // namespace

double SampledGaussianRdp(double q, double sigma, double alpha) {
  double edge = 0.0;
  if (EdgeCase(q, sigma, alpha, &edge)) return edge;
  const double log_a = IsInteger(alpha) ? LogAIntegerOrder(q, sigma, static_cast<int64_t>(alpha))
                                        : LogAByIntegration(q, sigma, alpha);
  // A_alpha >= 1 mathematically; rounding can dip a hair below, which is no privacy loss.
  return std::max(0.0, log_a / (alpha - 1.0));
}

double SampledGaussianRdpByIntegration(double q, double sigma, double alpha) {
  double edge = 0.0;
  if (EdgeCase(q, sigma, alpha, &edge)) return edge;
  return std::max(0.0, LogAByIntegration(q, sigma, alpha) / (alpha - 1.0));
}

std::vector<double> DefaultRdpOrders() {
  std::vector<double> orders;
  for (int i = 5; i <= 40; ++i) orders.push_back(0.25 * i);  // 1.25 .. 10
  for (int a = 11; a <= 64; ++a) orders.push_back(a);
  for (double a : {80.0, 96.0, 128.0, 256.0, 512.0}) orders.push_back(a);
  return orders;
}

RdpAccountant::RdpAccountant() : RdpAccountant(DefaultRdpOrders()) {}

RdpAccountant::RdpAccountant(std::vector<double> orders)
    : orders_(std::move(orders)), rdp_(orders_.size(), 0.0) {}

Result<RdpAccountant> RdpAccountant::Create(std::vector<double> orders) {
  if (orders.empty()) return InvalidArgumentError("RDP accountant: no orders given");
  for (double a : orders) {
    if (!(a > 1.0) || !std::isfinite(a)) {
      return InvalidArgumentError("RDP accountant: every order must be finite and > 1, got " +
                                  std::to_string(a));
    }
  }
  return RdpAccountant(std::move(orders));
}

Status RdpAccountant::Step(double q, double sigma) { return Steps(q, sigma, 1); }

Status RdpAccountant::Steps(double q, double sigma, int64_t count) {
  HML_RETURN_IF_ERROR(CheckStep(q, sigma));
  if (count < 0) {
    return InvalidArgumentError("RDP accountant: step count must be >= 0, got " +
                                std::to_string(count));
  }
  if (q != cached_q_ || sigma != cached_sigma_) {
    cached_rdp_.resize(orders_.size());
    for (size_t i = 0; i < orders_.size(); ++i) {
      cached_rdp_[i] = SampledGaussianRdp(q, sigma, orders_[i]);
    }
    cached_q_ = q;
    cached_sigma_ = sigma;
  }
  for (size_t i = 0; i < orders_.size(); ++i) {
    // 0 * inf is NaN; zero rounds of anything cost nothing.
    if (count > 0) rdp_[i] += static_cast<double>(count) * cached_rdp_[i];
  }
  steps_ += count;
  return Status::Ok();
}

namespace {

// Epsilon at one order (see the file comment for both conversions).
double EpsilonAtOrder(double alpha, double rdp, double delta, RdpConversion conversion) {
  if (std::isinf(rdp)) return kInf;
  const double eps =
      conversion == RdpConversion::kTight
          ? rdp + std::log1p(-1.0 / alpha) - (std::log(delta) + std::log(alpha)) / (alpha - 1.0)
          : rdp - std::log(delta) / (alpha - 1.0);
  return std::max(0.0, eps);
}

}  // namespace

double EpsilonFromRdp(std::span<const double> orders, std::span<const double> rdp, double delta,
                      RdpConversion conversion, double* optimal_order) {
  if (!(delta > 0.0 && delta < 1.0) || orders.size() != rdp.size() || orders.empty()) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  double best = kInf;
  double best_order = orders[0];
  for (size_t i = 0; i < orders.size(); ++i) {
    // A Renyi divergence of 0 at any order means the output distributions are identical: (0, 0)-DP,
    // which the finite-order conversions below would only approach.
    if (rdp[i] == 0.0) {
      if (optimal_order != nullptr) *optimal_order = orders[i];
      return 0.0;
    }
    const double eps = EpsilonAtOrder(orders[i], rdp[i], delta, conversion);
    if (eps < best) {
      best = eps;
      best_order = orders[i];
    }
  }
  if (optimal_order != nullptr) *optimal_order = best_order;
  return best;
}

double RdpAccountant::Epsilon(double delta) const {
  return EpsilonFromRdp(orders_, rdp_, delta, RdpConversion::kTight);
}

double RdpAccountant::EpsilonClassic(double delta) const {
  return EpsilonFromRdp(orders_, rdp_, delta, RdpConversion::kClassic);
}

double RdpAccountant::OptimalOrder(double delta) const {
  double order = 0.0;
  EpsilonFromRdp(orders_, rdp_, delta, RdpConversion::kTight, &order);
  return order;
}

}  // namespace hml::fl
