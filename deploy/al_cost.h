/*  al_cost.h: seed 002's cost guardrail: a deploy's projected monthly cost against its
    environment's budget.

    One function, called by everyone who speaks of cost, so they cannot disagree:
    pre-flight (refuses a deploy over budget), the notifier (alerts when the projection
    passes constraints.yaml's budget_alert_percent of the budget) and `airlock costplan`
    (cost-plan.md). The projection is instances × services.yaml's
    cost_per_instance_usd_month for one service; it knows nothing of other services, data
    transfer, storage or third parties (cost-plan.md says so). Pure, thread-safe.
*/
#ifndef AL_COST_H_INCLUDED
#define AL_COST_H_INCLUDED

#include <stdbool.h>
#include "deploy/al_services.h"
#include "policies/al_policy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    unsigned instances;
    double per_instance_usd;        // services.yaml cost_per_instance_usd_month
    double monthly_usd;             // instances × per_instance_usd
    double budget_usd;              // constraints.yaml monthly_budget_usd
    double alert_percent;           // constraints.yaml budget_alert_percent (default 80)
    double share_percent;           // monthly / budget × 100; 0 when both are 0; > 100 when over
    bool over_budget;               // monthly > budget: pre-flight refuses the deploy
    bool alert;                     // share >= alert_percent and cost > 0: the notifier alerts
} al_cost_projection_t;

//  Project svc running instances instances in env (0: services.yaml's count for env).
void al_cost_project (const al_policy_t *policy, const al_service_t *svc, Airlock__Environment env,
                      unsigned instances, al_cost_projection_t *projection);

//  "150.00 USD/month for 3 instance(s) at 50.00, 3.0% of the 5000.00 budget (alert at 80%)".
void al_cost_describe (const al_cost_projection_t *projection, char *text, size_t size);

#ifdef __cplusplus
}
#endif

#endif
