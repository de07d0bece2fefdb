{{ config(materialized='incremental') }}

with

orders as (

    select * from {{ ref('fct_orders') }}
    where {{ flower_in_window('order_date') }}

),

daily_revenue as (

    select
        orders.country,
        count(orders.order_id) as order_count,
        count(case when orders.is_cancelled then 1 end) as cancelled_order_count,
        cast(sum(orders.amount_paid) as decimal(14, 2)) as revenue,
        orders.order_date

    from orders

    group by orders.order_date, orders.country

)

select * from daily_revenue
