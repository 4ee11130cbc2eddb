/*-------------------------------------------------------------------------
 *
 * forecast_sim.c
 *	  Prediction intervals of ordersync.forecast() where no formula gives
 *	  them: sample paths of the fitted model with normal errors, and the
 *	  quantiles of each step's values (Hyndman et al. 2008, section 6.1).
 *	  This is used for multiplicative seasons, whose variance has no closed
 *	  form, and for long horizons of multiplicative-error models, whose
 *	  exact formula costs O(h^2).  Also the quantiles of the normal
 *	  distribution the analytic intervals need.
 *
 *	  The paths come from a generator seeded with a constant, so the same
 *	  arguments always give the same intervals (the function is IMMUTABLE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "utils/float.h"

#include "forecast.h"

/* paths per step, fewer for long horizons or seasons (see npaths()) */
#define FC_SIM_PATHS		5000
#define FC_SIM_MIN_PATHS	1000
#define FC_SIM_WORK			50000000.0	/* path steps, at most */
#define FC_SIM_MEMORY		20000000.0	/* seasonal states kept, at most */

/*
 * The quantile of the standard normal distribution at p (0 < p < 1), by
 * Halley's method on erfc() from the rational start of Abramowitz and
 * Stegun 26.2.23; accurate to a few units in the last place.
 */
double
fc_normal_quantile(double p)
{
	double		q = p < 0.5 ? p : 1.0 - p;
	double		t = sqrt(-2.0 * log(q));
	double		x;

	/* the lower tail quantile -x of q, with x > 0 */
	x = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) /
		(1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
	for (int i = 0; i < 4; i++)
	{
		/* f(x) = upper tail at x - q; f'(x) = -density */
		double		tail = 0.5 * erfc(x / M_SQRT2);
		double		dens = exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
		double		r = (tail - q) / dens;

		x += r / (1.0 + 0.5 * x * r);
	}
	return p < 0.5 ? -x : x;
}

/* splitmix64 (Steele, Lea and Flood 2014): a small, good 64-bit generator */
static inline uint64
next_random(uint64 *state)
{
	uint64		z = (*state += UINT64CONST(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* uniform on (0, 1), never 0 */
static inline double
next_uniform(uint64 *state)
{
	return ((next_random(state) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* a pair of independent standard normals (Box-Muller) */
static inline void
next_normals(uint64 *state, double *z1, double *z2)
{
	double		r = sqrt(-2.0 * log(next_uniform(state)));
	double		a = 2.0 * M_PI * next_uniform(state);

	*z1 = r * cos(a);
	*z2 = r * sin(a);
}

/* the k-th smallest of x[0..n) (0-based), moving elements of x around */
static double
select_kth(double *x, int n, int k)
{
	int			lo = 0;
	int			hi = n - 1;

	while (lo < hi)
	{
		double		pivot = x[lo + (hi - lo) / 2];
		int			i = lo;
		int			j = hi;

		while (i <= j)
		{
			while (x[i] < pivot)
				i++;
			while (x[j] > pivot)
				j--;
			if (i <= j)
			{
				double		tmp = x[i];

				x[i] = x[j];
				x[j] = tmp;
				i++;
				j--;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			break;
	}
	return x[k];
}

/*
 * The p-quantile of x[0..n) interpolated between order statistics (type 7
 * of Hyndman and Fan 1996, R's default).
 */
static double
quantile(double *x, int n, double p)
{
	double		pos = p * (n - 1);
	int			k = (int) floor(pos);
	double		lo = select_kth(x, n, k);
	double		hi = lo;

	if (k + 1 < n)
	{
		/* after select_kth, x[k+1..n) holds the larger values */
		hi = x[k + 1];
		for (int i = k + 2; i < n; i++)
			hi = Min(hi, x[i]);
	}
	return lo + (pos - k) * (hi - lo);
}

static int
npaths(const FcModel *mod, int h)
{
	double		paths = FC_SIM_PATHS;

	paths = Min(paths, FC_SIM_WORK / h);
	if (h > mod->m)
		paths = Min(paths, FC_SIM_MEMORY / mod->m);
	return (int) Max(paths, FC_SIM_MIN_PATHS);
}

/*
 * lower[j - 1] and upper[j - 1]: the central level interval of step j from
 * sample paths of the model as last run.
 */
void
fc_simulate_intervals(const FcModel *mod, int h, double level,
					  double *lower, double *upper)
{
	const int	m = mod->m;
	const int	np = npaths(mod, h);
	const double sigma = sqrt(mod->sigma2);
	const double phi = mod->trend == 'D' ? mod->phi : 1.0;

	/* seasonal states per path only when a path comes back to them */
	const bool	own_season = mod->season != 'N' && h > m;
	double	   *l = palloc(sizeof(double) * np);
	double	   *b = palloc(sizeof(double) * np);
	double	   *s = NULL;
	double	   *ys = palloc(sizeof(double) * np);
	double	   *z = palloc(sizeof(double) * (np + 1));
	uint64		rng = UINT64CONST(0x6F7264657273796E);	/* "ordersyn" */
	int			pos = mod->n % m;

	for (int p = 0; p < np; p++)
	{
		l[p] = mod->l;
		b[p] = mod->b;
	}
	if (own_season)
	{
		s = palloc_extended(sizeof(double) * np * m, MCXT_ALLOC_HUGE);
		for (int p = 0; p < np; p++)
			memcpy(s + (Size) p * m, mod->s, sizeof(double) * m);
	}

	for (int j = 0; j < h; j++)
	{
		CHECK_FOR_INTERRUPTS();

		for (int p = 0; p < np; p += 2)
			next_normals(&rng, &z[p], &z[p + 1]);

		for (int p = 0; p < np; p++)
		{
			double		q = mod->trend != 'N' ? l[p] + phi * b[p] : l[p];
			double	   *sp = own_season ? s + (Size) p * m + pos : NULL;
			double		so = mod->season == 'N' ? 0.0 : own_season ? *sp : mod->s[pos];
			double		mu = mod->season == 'M' ? q * so : q + so;
			double		e = sigma * z[p];
			double		y = mod->error == 'M' ? mu * (1.0 + e) : mu + e;
			double		d;

			/* a path that overflowed stays where it went */
			if (isinf(l[p]))
			{
				ys[p] = l[p];
				continue;
			}

			switch (mod->season)
			{
				case 'A':
					d = y - mu;
					if (own_season)
						*sp = so + mod->gamma * d;
					break;
				case 'M':
					/* a path whose level or season reaches 0 stays there */
					d = so != 0.0 ? y / so - q : 0.0;
					if (own_season && q != 0.0)
						*sp = so + mod->gamma * (y / q - so);
					break;
				default:
					d = y - mu;
					break;
			}
			l[p] = q + mod->alpha * d;
			if (mod->trend != 'N')
				b[p] = phi * b[p] + mod->beta * d;

			/*
			 * A path that overflows stays at its infinity (never NaN): an
			 * interval may then honestly end at Infinity.
			 */
			if (isnan(y) || isinf(y) || isnan(l[p]) || isinf(l[p]))
			{
				y = y < 0.0 ? -get_float8_infinity() : get_float8_infinity();
				l[p] = y;
				b[p] = 0.0;
			}
			ys[p] = y;
		}
		if (++pos == m)
			pos = 0;

		lower[j] = quantile(ys, np, (1.0 - level) / 2.0);
		upper[j] = quantile(ys, np, (1.0 + level) / 2.0);
	}

	pfree(l);
	pfree(b);
	pfree(ys);
	pfree(z);
	if (s)
		pfree(s);
}
