{{ config(materialized='incremental') }}

with

orders as (

    select * from {{ ref('fct_orders') }}
    where {{ flower_in_window('order_date') }}

),

orders_by_month as (

    select
        orders.order_id,
        orders.user_id,
        orders.country,
        orders.is_cancelled,
        orders.amount_paid,
        cast({{ dbt.date_trunc('month', 'orders.order_date') }} as date) as month_start

    from orders

),

monthly_revenue as (

    select
        orders_by_month.country,
        count(orders_by_month.order_id) as order_count,
        count(case when orders_by_month.is_cancelled then 1 end) as cancelled_order_count,
        count(distinct orders_by_month.user_id) as customer_count,
        cast(sum(orders_by_month.amount_paid) as decimal(14, 2)) as revenue,
        orders_by_month.month_start

    from orders_by_month

    group by orders_by_month.month_start, orders_by_month.country

)

select * from monthly_revenue
