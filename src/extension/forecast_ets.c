/*-------------------------------------------------------------------------
 *
 * forecast_ets.c
 *	  Exponential smoothing models for ordersync.forecast(): running a model
 *	  over the history (one-step errors, likelihood, final states), starting
 *	  states from the first seasons, point forecasts, and the analytic
 *	  forecast variances of the models that have them.
 *
 *	  The formulas are those of Hyndman, Koehler, Ord and Snyder,
 *	  "Forecasting with Exponential Smoothing: the State Space Approach"
 *	  (Springer, 2008), chapters 2 and 6.  See forecast.h for the model.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "utils/float.h"

#include "forecast.h"

/* how often the loops over the data look for a cancel request */
#define FC_INTERRUPT_MASK	0xFFFF

/*
 * Class 2 models (multiplicative error, no multiplicative season) have an
 * exact variance whose recursion costs O(h^2); longer horizons are
 * simulated like class 3 (forecast_sim.c).
 */
#define FC_CLASS2_MAX_H		5000

FcModel *
fc_model_new(char error, char trend, char season, int m)
{
	FcModel    *mod = palloc0(sizeof(FcModel));

	mod->error = error;
	mod->trend = trend;
	mod->season = season;
	mod->m = season == 'N' ? 1 : m;
	mod->phi = 1.0;
	mod->s0 = palloc0(sizeof(double) * mod->m);
	mod->s = palloc0(sizeof(double) * mod->m);
	return mod;
}

void
fc_model_free(FcModel *mod)
{
	pfree(mod->s0);
	pfree(mod->s);
	pfree(mod);
}

/* the model's name, such as "ETS(M,Ad,M)", in buf */
void
fc_model_name(const FcModel *mod, char *buf, size_t len)
{
	snprintf(buf, len, "ETS(%c,%s,%c)", mod->error,
			 mod->trend == 'D' ? "Ad" : mod->trend == 'A' ? "A" : "N",
			 mod->season);
}

/*
 * One run of a model over y[0..n), for fc_filter().  Written once and
 * instantiated for each kind of model there, so that the loop tests
 * nothing but the data.
 *
 * A step waits for the one before through the level and the trend only, so
 * they are updated in as few dependent operations as possible: with x the
 * value without its season (q + d), l' = (1 - alpha) q + alpha x and
 * b' = (phi b + beta x) - beta q.  A multiplicative error needs the sum of
 * log(mu): the mu are multiplied together and the logarithm of the product
 * taken only when it leaves [1e-200, 1e200].
 */
static pg_attribute_always_inline double
filter_pass(const double *y, int n, FcModel *mod, const char season,
			const bool trend, const bool mul_error)
{
	const int	m = mod->m;
	const double phi = mod->trend == 'D' ? mod->phi : 1.0;
	const double alpha = mod->alpha;
	const double keep = 1.0 - mod->alpha;
	const double beta = mod->beta;
	const double gamma = mod->gamma;
	double		l = mod->l0;
	double		b = trend ? mod->b0 : 0.0;
	double	   *s = mod->s;
	double		sse = 0.0;
	double		sumlog = 0.0;
	double		product = 1.0;
	int			pos = 0;

	memcpy(s, mod->s0, sizeof(double) * m);
	for (int t = 0; t < n; t++)
	{
		double		q = trend ? l + phi * b : l;
		double		x;
		double		mu;
		double		e;

		if ((t & FC_INTERRUPT_MASK) == FC_INTERRUPT_MASK)
			CHECK_FOR_INTERRUPTS();

		if (season == 'A')
		{
			double		so = s[pos];

			x = y[t] - so;
			mu = q + so;
			e = x - q;
			s[pos] = so + gamma * e;
		}
		else if (season == 'M')
		{
			double		so = s[pos];
			double		inv_q;

			if (q <= 0.0 || so <= 0.0)
				return mod->crit = get_float8_infinity();
			inv_q = 1.0 / q;
			x = y[t] / so;
			mu = q * so;
			e = mul_error ? x * inv_q - 1.0 : y[t] - mu;
			s[pos] = so + gamma * (y[t] * inv_q - so);
		}
		else
		{
			x = y[t];
			mu = q;
			e = x - q;
		}
		if (season != 'N' && ++pos == m)
			pos = 0;

		if (mul_error)
		{
			if (mu <= 0.0)
				return mod->crit = get_float8_infinity();
			if (season != 'M')
				e /= mu;
			product *= mu;
			if (product > 1e200 || product < 1e-200)
			{
				sumlog += log(product);
				product = 1.0;
			}
		}
		sse += e * e;

		if (trend)
			b = (phi * b + beta * x) - beta * q;
		l = keep * q + alpha * x;
	}
	sumlog += log(product);

	mod->n = n;
	mod->l = l;
	mod->b = b;
	mod->sse = sse;
	if (!isfinite(sse) || !isfinite(l) || !isfinite(b))
		return mod->crit = get_float8_infinity();

	/* an exact fit: keep the logarithm finite (the data are scaled to ~1) */
	sse = Max(sse, n * 1e-24);
	mod->crit = n * log(sse / n) + 2.0 * sumlog;
	return mod->crit;
}

#define FILTER_PASS(season) \
	(trend ? \
	 (mul ? filter_pass(y, n, mod, season, true, true) : \
	  filter_pass(y, n, mod, season, true, false)) : \
	 (mul ? filter_pass(y, n, mod, season, false, true) : \
	  filter_pass(y, n, mod, season, false, false)))

/*
 * Runs the model from its starting states over y[0..n), leaving the final
 * states in mod->l, mod->b, mod->s and the fit in mod->sse and mod->crit.
 * Returns crit: n log(sse/n) for additive errors, plus 2 sum(log mu) for
 * multiplicative ones (the relative error e = (y - mu)/mu is then what is
 * squared), i.e. -2 log likelihood without its constant.  Returns infinity
 * when the model breaks down: a multiplicative model whose level, season
 * or forecast is not positive, or figures that overflow.
 */
double
fc_filter(const double *y, int n, FcModel *mod)
{
	const bool	trend = mod->trend != 'N';
	const bool	mul = mod->error == 'M';

	switch (mod->season)
	{
		case 'A':
			return FILTER_PASS('A');
		case 'M':
			return FILTER_PASS('M');
		default:
			return FILTER_PASS('N');
	}
}

/*
 * The least-squares line through (x = 1..len, z[0..len)): *a is its value
 * at x = 0, *b its slope.
 */
static void
fit_line(const double *z, int len, double *a, double *b)
{
	double		mx = (len + 1) / 2.0;
	double		mz = 0.0;
	double		sxz = 0.0;
	double		sxx = 0.0;

	for (int t = 0; t < len; t++)
		mz += z[t];
	mz /= len;
	for (int t = 0; t < len; t++)
	{
		double		dx = (t + 1) - mx;

		sxz += dx * (z[t] - mz);
		sxx += dx * dx;
	}
	*b = sxx > 0.0 ? sxz / sxx : 0.0;
	*a = mz - *b * mx;
}

/*
 * Seasonal indices of the first len = k * m values (k >= 2) by classical
 * decomposition: a centred moving average over one season (2 x m when m is
 * even) is the trend, each value's difference from it (or ratio to it)
 * averaged over the seasons is the index, and the indices are normalised
 * to sum to 0 (or to average 1).
 */
static void
seasonal_indices(const double *y, int len, int m, bool mul, double *idx)
{
	double	   *sum = palloc0(sizeof(double) * m);
	int		   *cnt = palloc0(sizeof(int) * m);
	int			half = m / 2;
	double		window = 0.0;
	double		norm = 0.0;

	/*
	 * window holds the sum of y[t - half .. t + half] (odd m) or of y[t -
	 * half + 1 .. t + half - 1] (even m, whose ends count half).
	 */
	if (m % 2 == 1)
	{
		for (int i = 0; i < m; i++)
			window += y[i];
		for (int t = half; t + half < len; t++)
		{
			double		ma = window / m;
			double		v = mul ? y[t] / ma : y[t] - ma;

			sum[t % m] += v;
			cnt[t % m]++;
			if (t + half + 1 < len)
				window += y[t + half + 1] - y[t - half];
		}
	}
	else
	{
		for (int i = 1; i < m; i++)
			window += y[i];
		for (int t = half; t + half < len; t++)
		{
			double		ma = (window + 0.5 * (y[t - half] + y[t + half])) / m;
			double		v = mul ? y[t] / ma : y[t] - ma;

			sum[t % m] += v;
			cnt[t % m]++;
			if (t + half < len)
				window += y[t + half] - y[t - half + 1];
		}
	}

	for (int j = 0; j < m; j++)
	{
		idx[j] = cnt[j] > 0 ? sum[j] / cnt[j] : (mul ? 1.0 : 0.0);
		norm += idx[j];
	}
	norm /= m;
	for (int j = 0; j < m; j++)
	{
		if (mul)
			idx[j] = norm > 0.0 ? idx[j] / norm : 1.0;
		else
			idx[j] -= norm;
	}
	pfree(sum);
	pfree(cnt);
}

/*
 * Starting states from the start of the history (Hyndman et al. 2008,
 * section 2.6.1, in spirit): the seasonal indices of up to the first four
 * seasons, and a straight line through the seasonally adjusted first
 * values (up to four seasons, or ten values without a season).  Without a
 * trend the level starts at the mean of the first season (or values).
 */
void
fc_initial_states(const double *y, int n, FcModel *mod)
{
	const int	m = mod->m;
	int			len;
	double	   *z;
	double		a,
				b;

	if (mod->season != 'N')
	{
		int			k = Min(n / m, 4);

		Assert(k >= 2);
		len = k * m;
		seasonal_indices(y, len, m, mod->season == 'M', mod->s0);
	}
	else
	{
		len = Min(n, 10);
		mod->s0[0] = 0.0;
	}

	z = palloc(sizeof(double) * len);
	for (int t = 0; t < len; t++)
	{
		if (mod->season == 'M')
			z[t] = y[t] / mod->s0[t % m];
		else if (mod->season == 'A')
			z[t] = y[t] - mod->s0[t % m];
		else
			z[t] = y[t];
	}

	if (mod->trend != 'N')
	{
		fit_line(z, len, &a, &b);
		mod->l0 = a;
		mod->b0 = b;
		/* a multiplicative model needs a positive start */
		if (mod->error == 'M' || mod->season == 'M')
		{
			if (mod->l0 + b <= 0.0)
			{
				mod->l0 = z[0];
				mod->b0 = 0.0;
			}
		}
	}
	else
	{
		int			first = mod->season != 'N' ? m : len;

		a = 0.0;
		for (int t = 0; t < first; t++)
			a += z[t];
		mod->l0 = a / first;
		mod->b0 = 0.0;
	}
	pfree(z);
}

/*
 * Point forecasts for the h steps after the history the model was last run
 * over: mean[j - 1] for step j.
 */
void
fc_point(const FcModel *mod, int h, double *mean)
{
	const int	m = mod->m;
	int			pos = mod->n % m;
	double		damped = 0.0;
	double		power = 1.0;

	for (int j = 1; j <= h; j++)
	{
		double		mult;
		double		q;

		/* the trend's multiplier: j, or phi + ... + phi^j when damped */
		if (mod->trend == 'D')
		{
			power *= mod->phi;
			damped += power;
			mult = damped;
		}
		else
			mult = mod->trend == 'A' ? j : 0.0;
		q = mod->l + mult * mod->b;

		switch (mod->season)
		{
			case 'A':
				mean[j - 1] = q + mod->s[pos];
				break;
			case 'M':
				mean[j - 1] = q * mod->s[pos];
				break;
			default:
				mean[j - 1] = q;
				break;
		}
		if (++pos == m)
			pos = 0;
	}
}

/*
 * sum |y[j] - f[j]| for j in [0, len), where f[j] is l + mult[j] b, plus or
 * times s[j] as the season is; in four sums for speed.
 */
static pg_attribute_always_inline double
abs_errors(const double *y, const double *mult, const double *s, double l,
		   double b, int len, char season)
{
	double		acc[4] = {0.0, 0.0, 0.0, 0.0};
	int			j = 0;

#define FORECAST_AT(j) \
	(season == 'A' ? l + mult[j] * b + s[j] : \
	 season == 'M' ? (l + mult[j] * b) * s[j] : l + mult[j] * b)

	for (; j + 4 <= len; j += 4)
	{
		acc[0] += fabs(y[j] - FORECAST_AT(j));
		acc[1] += fabs(y[j + 1] - FORECAST_AT(j + 1));
		acc[2] += fabs(y[j + 2] - FORECAST_AT(j + 2));
		acc[3] += fabs(y[j + 3] - FORECAST_AT(j + 3));
	}
	for (; j < len; j++)
		acc[0] += fabs(y[j] - FORECAST_AT(j));
#undef FORECAST_AT
	return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/*
 * The mean absolute error of the model's forecasts 1..h steps ahead from
 * every origin first, first + 1, ..., n - h of y[0..n) (the forecast from
 * origin o uses y[0..o) and is compared with y[o..o+h)), with the
 * parameters it has: an in-sample measure of how well it forecasts h steps
 * ahead, computed in one pass over the history.
 */
double
fc_multistep_error(const double *y, int n, const FcModel *mod, int h,
				   int first)
{
	const int	m = mod->m;
	const bool	trend = mod->trend != 'N';
	const double phi = mod->trend == 'D' ? mod->phi : 1.0;
	double	   *mult = palloc(sizeof(double) * h);
	double	   *s = palloc(sizeof(double) * m);
	double		l = mod->l0;
	double		b = trend ? mod->b0 : 0.0;
	double		total = 0.0;
	double		power = 1.0;
	double		damped = 0.0;
	int			pos = 0;

	Assert(first >= 0 && first <= n - h);

	/* the trend's multiplier j steps on: j, or phi + ... + phi^j */
	for (int j = 0; j < h; j++)
	{
		power *= phi;
		damped += power;
		mult[j] = !trend ? 0.0 : mod->trend == 'A' ? j + 1 : damped;
	}

	memcpy(s, mod->s0, sizeof(double) * m);
	for (int t = 0; t <= n - h; t++)
	{
		double		q;
		double		d;

		if (t >= first)
		{
			CHECK_FOR_INTERRUPTS();
			if (mod->season == 'N')
				total += abs_errors(y + t, mult, NULL, l, b, h, 'N');
			else
			{
				/* in runs over which the seasonal states do not wrap */
				int			p = pos;

				for (int j = 0; j < h;)
				{
					int			run = Min(h - j, m - p);

					if (mod->season == 'A')
						total += abs_errors(y + t + j, mult + j, s + p, l, b, run, 'A');
					else
						total += abs_errors(y + t + j, mult + j, s + p, l, b, run, 'M');
					j += run;
					p = 0;
				}
			}
		}
		if (t == n - h)
			break;

		/* the same step as fc_filter() */
		q = trend ? l + phi * b : l;
		switch (mod->season)
		{
			case 'A':
				d = y[t] - q - s[pos];
				s[pos] += mod->gamma * d;
				break;
			case 'M':
				d = y[t] / s[pos] - q;
				s[pos] += mod->gamma * (y[t] / q - s[pos]);
				break;
			default:
				d = y[t] - q;
				break;
		}
		if (++pos == m)
			pos = 0;
		l = q + mod->alpha * d;
		if (trend)
			b = phi * b + mod->beta * d;
	}
	pfree(mult);
	pfree(s);
	return total / ((double) (n - h - first + 1) * h);
}

/*
 * Whether fc_variance() knows the variance of the model's forecasts h steps
 * on: models without a multiplicative season (classes 1 and 2 of Hyndman
 * et al. 2008, chapter 6), the multiplicative-error ones for horizons up to
 * FC_CLASS2_MAX_H.  The others are simulated.
 */
bool
fc_has_analytic_variance(const FcModel *mod, int h)
{
	if (mod->season == 'M')
		return false;
	return mod->error == 'A' || h <= FC_CLASS2_MAX_H;
}

/*
 * Forecast variances var[j - 1] of steps j = 1..h (Hyndman et al. 2008,
 * section 6.3).  With c_j = alpha + beta (phi + ... + phi^j) + gamma
 * [j is a multiple of m]:
 *
 *	additive error:			v_h = sigma2 (1 + sum_{j<h} c_j^2)
 *	multiplicative error:	v_h = (1 + sigma2) theta_h - mu_h^2, where
 *							theta_h = mu_h^2 + sigma2 sum_{j<h} c_j^2 theta_{h-j}
 */
void
fc_variance(const FcModel *mod, int h, const double *mean, double *var)
{
	double	   *c2 = palloc(sizeof(double) * Max(h, 1));
	double		damped = 0.0;
	double		power = 1.0;

	Assert(fc_has_analytic_variance(mod, h));
	c2[0] = 0.0;
	for (int j = 1; j < h; j++)
	{
		double		c = mod->alpha;

		if (mod->trend == 'A')
			c += mod->beta * j;
		else if (mod->trend == 'D')
		{
			power *= mod->phi;
			damped += power;
			c += mod->beta * damped;
		}
		if (mod->season != 'N' && j % mod->m == 0)
			c += mod->gamma;
		c2[j] = c * c;
	}

	if (mod->error == 'A')
	{
		double		cum = 0.0;

		for (int j = 0; j < h; j++)
		{
			if (j > 0)
				cum += c2[j];
			var[j] = mod->sigma2 * (1.0 + cum);
		}
	}
	else
	{
		double	   *theta = palloc(sizeof(double) * h);

		for (int i = 0; i < h; i++)
		{
			double		acc = 0.0;

			CHECK_FOR_INTERRUPTS();
			for (int j = 1; j <= i; j++)
				acc += c2[j] * theta[i - j];
			theta[i] = mean[i] * mean[i] + mod->sigma2 * acc;
			var[i] = (1.0 + mod->sigma2) * theta[i] - mean[i] * mean[i];
		}
		pfree(theta);
	}
	pfree(c2);
}
