{{ config(materialized='incremental') }}

with

orders as (

    select * from {{ ref('stg_orders') }}
    where {{ flower_in_window('ordered_at') }}

),

users as (

    select * from {{ ref('stg_users') }}

),

-- Payments follow their order into its day, even one paid just after midnight.
payments_of_orders as (

    select * from {{ ref('stg_payments') }}
    where order_id in (select orders.order_id from orders)

),

order_payments as (

    select
        payments_of_orders.order_id,
        count(payments_of_orders.payment_id) as payment_count,
        sum(payments_of_orders.amount) as amount_paid,
        max(payments_of_orders.paid_at) as paid_at

    from payments_of_orders

    group by payments_of_orders.order_id

),

final as (

    select
        orders.order_id,
        orders.user_id,
        users.country,
        orders.status,
        orders.status = 'cancelled' as is_cancelled,
        coalesce(order_payments.payment_count, 0) as payment_count,
        cast(coalesce(order_payments.amount_paid, 0) as decimal(12, 2)) as amount_paid,
        orders.ordered_at,
        order_payments.paid_at,
        cast(orders.ordered_at as date) as order_date

    from orders

    left join users
        on orders.user_id = users.user_id

    left join order_payments
        on orders.order_id = order_payments.order_id

)

select * from final
