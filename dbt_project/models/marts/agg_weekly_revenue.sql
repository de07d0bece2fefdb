{{ config(materialized='incremental') }}

with

orders as (

    select * from {{ ref('fct_orders') }}
    where {{ flower_in_window('order_date') }}

),

orders_by_week as (

    select
        orders.order_id,
        orders.user_id,
        orders.country,
        orders.is_cancelled,
        orders.amount_paid,
        cast({{ dbt.date_trunc('week', 'orders.order_date') }} as date) as week_start

    from orders

),

weekly_revenue as (

    select
        orders_by_week.country,
        count(orders_by_week.order_id) as order_count,
        count(case when orders_by_week.is_cancelled then 1 end) as cancelled_order_count,
        count(distinct orders_by_week.user_id) as customer_count,
        cast(sum(orders_by_week.amount_paid) as decimal(14, 2)) as revenue,
        orders_by_week.week_start

    from orders_by_week

    group by orders_by_week.week_start, orders_by_week.country

)

select * from weekly_revenue
