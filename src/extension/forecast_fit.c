/*-------------------------------------------------------------------------
 *
 * forecast_fit.c
 *	  Fitting one exponential smoothing model to a history: the smoothing
 *	  parameters, and for short seasons the starting states too, that
 *	  maximise the likelihood, found with Nelder-Mead (forecast_optim.c)
 *	  from the heuristic starting states of forecast_ets.c.
 *
 *	  The parameters are kept in the usual region of Hyndman et al. (2008,
 *	  section 5.4): 0 < beta < alpha < 1, 0 < gamma < 1 - alpha and
 *	  0.8 < phi < 0.98, through logistic transforms, so that the simplex
 *	  moves in unbounded coordinates and never steps outside.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/float.h"

#include "forecast.h"

#define LOW			1e-4
#define HIGH		0.9999
#define PHI_LOW		0.8
#define PHI_HIGH	0.98

/*
 * Starting states are fitted along with the smoothing parameters when the
 * history is at most FC_FIT_STATES_MAX_N values long (over longer ones
 * they hardly matter), the seasonal ones when the season is at most
 * FC_FIT_SEASON_STATES_MAX_M long (as many parameters as a year of months
 * and a few more).  Otherwise the heuristic states are kept, refined by the
 * smoothing itself as it runs over the history.
 */
#define FC_FIT_STATES_MAX_N	2000
#define FC_FIT_SEASON_STATES_MAX_M	12

typedef struct FitArg
{
	const double *y;
	int			n;
	FcModel    *mod;
	bool		fit_states;
	bool		fit_season;
} FitArg;

static inline double
logistic(double u)
{
	return 1.0 / (1.0 + exp(-u));
}

static inline double
logit(double p)
{
	p = Min(Max(p, 1e-6), 1.0 - 1e-6);
	return log(p / (1.0 - p));
}

/* u -> the model's parameters and starting states; false when inadmissible */
static bool
unpack(const double *u, FitArg *a)
{
	FcModel    *mod = a->mod;
	int			k = 0;

	mod->alpha = LOW + (HIGH - LOW) * logistic(u[k++]);
	if (mod->trend != 'N')
		mod->beta = LOW + (mod->alpha - LOW) * logistic(u[k++]);
	if (mod->season != 'N')
		mod->gamma = LOW + Max(1.0 - mod->alpha - LOW, 0.0) * logistic(u[k++]);
	if (mod->trend == 'D')
		mod->phi = PHI_LOW + (PHI_HIGH - PHI_LOW) * logistic(u[k++]);
	if (a->fit_states)
	{
		mod->l0 = u[k++];
		if (mod->trend != 'N')
			mod->b0 = u[k++];
	}
	if (a->fit_season)
	{
		double		sum = 0.0;

		for (int j = 0; j < mod->m - 1; j++)
		{
			mod->s0[j] = u[k++];
			sum += mod->s0[j];
		}
		/* the last index keeps the season normalised */
		mod->s0[mod->m - 1] = mod->season == 'M' ? mod->m - sum : -sum;
		if (mod->season == 'M' && mod->s0[mod->m - 1] <= 0.0)
			return false;
	}
	return true;
}

static double
objective(const double *u, void *arg)
{
	FitArg	   *a = (FitArg *) arg;

	if (!unpack(u, a))
		return get_float8_infinity();
	return fc_filter(a->y, a->n, a->mod);
}

/* u for a parameter p in (low, high) */
static double
coordinate(double p, double low, double high)
{
	return high > low ? logit((p - low) / (high - low)) : 0.0;
}

/*
 * Fits mod (error, trend, season and m set) to y[0..n) and leaves it run
 * over the whole history, with its sigma2, npar and AICc.  Returns false
 * when the model cannot be fitted: too few values for its parameters, or
 * no admissible start (a multiplicative model on data it cannot follow).
 *
 * The search starts from "from" when given: a model of the same season
 * already fitted (one without the trend, or without the damping, or with
 * the other kind of error), whose optimum is often close.  Otherwise from
 * a small alpha, beta and gamma a tenth of what they may be, and phi 0.95.
 */
bool
fc_fit(const double *y, int n, FcModel *mod, const FcModel *from)
{
	FitArg		a;
	int			dim = 0;
	int			nsmooth;
	double	   *u;
	double	   *step;
	double		alpha = mod->season != 'N' ? 0.2 : 0.3;
	double		beta_share = 0.1;
	double		gamma_share = 0.1;
	double		phi = 0.95;
	double		f;

	a.y = y;
	a.n = n;
	a.mod = mod;
	a.fit_states = n <= FC_FIT_STATES_MAX_N;
	a.fit_season = a.fit_states && mod->season != 'N' &&
		mod->m <= FC_FIT_SEASON_STATES_MAX_M;

	nsmooth = 1 + (mod->trend != 'N') + (mod->season != 'N') + (mod->trend == 'D');
	mod->npar = nsmooth + 1 + (mod->trend != 'N') +
		(mod->season != 'N' ? mod->m - 1 : 0) + 1;
	if (n - mod->npar - 1 <= 0)
		return false;

	fc_initial_states(y, n, mod);
	if (from)
	{
		Assert(from->season == mod->season && from->m == mod->m);
		alpha = from->alpha;
		if (from->trend != 'N')
			beta_share = (from->beta - LOW) / Max(from->alpha - LOW, 1e-12);
		else
			beta_share = 0.05;
		if (mod->season != 'N')
			gamma_share = (from->gamma - LOW) / Max(1.0 - from->alpha - LOW, 1e-12);
		if (from->trend == 'D')
			phi = from->phi;
		else
			phi = 0.97;
		if (a.fit_states)
		{
			mod->l0 = from->l0;
			if (from->trend != 'N')
				mod->b0 = from->b0;
		}
		if (a.fit_season)
			memcpy(mod->s0, from->s0, sizeof(double) * mod->m);
	}

	u = palloc(sizeof(double) * (nsmooth + 2 + mod->m));
	step = palloc(sizeof(double) * (nsmooth + 2 + mod->m));

	u[dim] = coordinate(alpha, LOW, HIGH);
	step[dim++] = from ? 0.5 : 1.0;
	if (mod->trend != 'N')
	{
		u[dim] = logit(beta_share);
		step[dim++] = from && from->trend != 'N' ? 0.5 : 1.0;
	}
	if (mod->season != 'N')
	{
		u[dim] = logit(gamma_share);
		step[dim++] = from ? 0.5 : 1.0;
	}
	if (mod->trend == 'D')
	{
		u[dim] = coordinate(phi, PHI_LOW, PHI_HIGH);
		step[dim++] = from && from->trend == 'D' ? 0.5 : 1.0;
	}
	if (a.fit_states)
	{
		u[dim] = mod->l0;
		step[dim++] = Max(0.1 * fabs(mod->l0), 0.01);
		if (mod->trend != 'N')
		{
			u[dim] = mod->b0;
			step[dim++] = Max(0.1 * fabs(mod->b0), 0.001);
		}
	}
	if (a.fit_season)
	{
		for (int j = 0; j < mod->m - 1; j++)
		{
			u[dim] = mod->s0[j];
			step[dim++] = mod->season == 'M' ? 0.05 : Max(0.1 * fabs(mod->s0[j]), 0.01);
		}
	}

	/* no admissible start: the model cannot describe these data */
	if (!isfinite(objective(u, &a)))
	{
		pfree(u);
		pfree(step);
		return false;
	}

	/*
	 * Once, then once more from where it stopped with a fresh, smaller
	 * simplex, which gets it out of the corners a simplex can collapse in.
	 * A hundredth is far below any difference of likelihoods that matters.
	 */
	f = fc_nelder_mead(objective, &a, dim, u, step, 200 + 100 * dim, 1e-2);
	for (int k = 0; k < dim; k++)
		step[k] *= 0.5;
	f = fc_nelder_mead(objective, &a, dim, u, step, 100 + 50 * dim, 1e-2);
	if (!isfinite(f))
	{
		pfree(u);
		pfree(step);
		return false;
	}

	/* leave the model run with the best parameters */
	(void) unpack(u, &a);
	f = fc_filter(y, n, mod);
	mod->sigma2 = mod->sse / (n - mod->npar);
	mod->aicc = f + 2.0 * mod->npar +
		2.0 * mod->npar * (mod->npar + 1) / (double) (n - mod->npar - 1);
	pfree(u);
	pfree(step);
	return true;
}
