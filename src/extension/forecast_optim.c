/*-------------------------------------------------------------------------
 *
 * forecast_optim.c
 *	  The Nelder-Mead simplex method (Nelder and Mead, The Computer Journal
 *	  7, 1965), which ordersync.forecast() uses to fit its models: it needs
 *	  no derivatives, and the likelihoods it minimises are cheap to compute
 *	  but have no convenient gradient.
 *
 *	  Coefficients are the usual ones: reflection 1, expansion 2,
 *	  contraction 1/2, shrink 1/2.  An objective may return infinity for a
 *	  point it rejects (a model that breaks down); the simplex then moves
 *	  away from it like from any bad point.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"

#include "forecast.h"

/* out = c + t (w - c) */
static void
along(int dim, const double *c, const double *w, double t, double *out)
{
	for (int k = 0; k < dim; k++)
		out[k] = c[k] + t * (w[k] - c[k]);
}

/*
 * Minimises f from x, with a first simplex of x and x + step[k] e_k.  Stops
 * when the values at the vertices differ by at most ftol or after maxeval
 * evaluations.  Leaves the best point in x and returns its value.
 */
double
fc_nelder_mead(FcObjective f, void *arg, int dim, double *x,
			   const double *step, int maxeval, double ftol)
{
	const int	nv = dim + 1;
	double	   *v = palloc(sizeof(double) * nv * dim);	/* vertex i at v + i*dim */
	double	   *fv = palloc(sizeof(double) * nv);
	double	   *c = palloc(sizeof(double) * dim);
	double	   *xr = palloc(sizeof(double) * dim);
	double	   *xt = palloc(sizeof(double) * dim);
	int			evals = 0;
	int			best = 0;
	double		fbest;

	for (int i = 0; i < nv; i++)
	{
		memcpy(v + i * dim, x, sizeof(double) * dim);
		if (i > 0)
			v[i * dim + i - 1] += step[i - 1];
		fv[i] = f(v + i * dim, arg);
		evals++;
	}

	for (;;)
	{
		int			worst = 0;
		int			second = 0;
		double		fr;

		CHECK_FOR_INTERRUPTS();

		/* the best, the worst and the second worst vertex */
		best = 0;
		for (int i = 1; i < nv; i++)
		{
			if (fv[i] < fv[best])
				best = i;
			if (fv[i] >= fv[worst])
				worst = i;
		}
		second = best;
		for (int i = 0; i < nv; i++)
			if (i != worst && fv[i] >= fv[second])
				second = i;

		if (evals >= maxeval || fv[worst] - fv[best] <= ftol)
			break;

		/* the centroid of every vertex but the worst */
		memset(c, 0, sizeof(double) * dim);
		for (int i = 0; i < nv; i++)
		{
			if (i == worst)
				continue;
			for (int k = 0; k < dim; k++)
				c[k] += v[i * dim + k];
		}
		for (int k = 0; k < dim; k++)
			c[k] /= dim;

		/* reflect the worst vertex through it */
		along(dim, c, v + worst * dim, -1.0, xr);
		fr = f(xr, arg);
		evals++;

		if (fr < fv[best])
		{
			double		fe;

			/* better than the best: try going twice as far */
			along(dim, c, v + worst * dim, -2.0, xt);
			fe = f(xt, arg);
			evals++;
			if (fe < fr)
			{
				memcpy(v + worst * dim, xt, sizeof(double) * dim);
				fv[worst] = fe;
			}
			else
			{
				memcpy(v + worst * dim, xr, sizeof(double) * dim);
				fv[worst] = fr;
			}
			continue;
		}
		if (fr < fv[second])
		{
			memcpy(v + worst * dim, xr, sizeof(double) * dim);
			fv[worst] = fr;
			continue;
		}

		/* contract: outside when the reflection helped, inside when not */
		{
			bool		outside = fr < fv[worst];
			double		fc;

			if (outside)
				along(dim, c, xr, 0.5, xt);
			else
				along(dim, c, v + worst * dim, 0.5, xt);
			fc = f(xt, arg);
			evals++;
			if (outside ? fc <= fr : fc < fv[worst])
			{
				memcpy(v + worst * dim, xt, sizeof(double) * dim);
				fv[worst] = fc;
				continue;
			}
		}

		/* shrink every vertex halfway towards the best */
		for (int i = 0; i < nv; i++)
		{
			if (i == best)
				continue;
			along(dim, v + best * dim, v + i * dim, 0.5, v + i * dim);
			fv[i] = f(v + i * dim, arg);
			evals++;
		}
	}

	memcpy(x, v + best * dim, sizeof(double) * dim);
	fbest = fv[best];
	pfree(v);
	pfree(fv);
	pfree(c);
	pfree(xr);
	pfree(xt);
	return fbest;
}
