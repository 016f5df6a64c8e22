/*  al_cost.c: seed 002's cost guardrail (see al_cost.h).
*/
#include "deploy/al_cost.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

void
al_cost_project (const al_policy_t *policy, const al_service_t *svc, Airlock__Environment env,
                 unsigned instances, al_cost_projection_t *projection)
{
    assert (policy);
    assert (svc);
    assert (projection);
    memset (projection, 0, sizeof *projection);
    projection->instances = instances? instances: al_service_instances (svc, env);
    projection->per_instance_usd = svc->cost_per_instance_usd_month;
    projection->monthly_usd = projection->instances * projection->per_instance_usd;
    projection->budget_usd = al_policy_monthly_budget_usd (policy, env);
    projection->alert_percent = al_policy_budget_alert_percent (policy, env);
    if (projection->budget_usd > 0)
        projection->share_percent = projection->monthly_usd * 100.0 / projection->budget_usd;
    else
        //  No budget: any cost is over it (fail closed), and shown as 100% past it.
        projection->share_percent = projection->monthly_usd > 0? 200.0: 0.0;
    projection->over_budget = projection->monthly_usd > projection->budget_usd;
    projection->alert = projection->monthly_usd > 0 && projection->share_percent >= projection->alert_percent;
}

void
al_cost_describe (const al_cost_projection_t *projection, char *text, size_t size)
{
    assert (projection);
    if (projection->budget_usd > 0)
        snprintf (text, size, "%.2f USD/month for %u instance(s) at %.2f, %.1f%% of the %.2f budget (alert at %g%%)%s",
                  projection->monthly_usd, projection->instances, projection->per_instance_usd,
                  projection->share_percent, projection->budget_usd, projection->alert_percent,
                  projection->over_budget? ": OVER BUDGET": projection->alert? ": past the alert share": "");
    else
        snprintf (text, size, "%.2f USD/month for %u instance(s) at %.2f, and the budget is 0%s",
                  projection->monthly_usd, projection->instances, projection->per_instance_usd,
                  projection->over_budget? ": OVER BUDGET": "");
}
