with

users as (

    select * from {{ ref('stg_users') }}

),

final as (

    select
        users.user_id,
        users.country,
        users.plan,
        users.plan <> 'free' as is_paying_plan,
        users.signed_up_at,
        cast(users.signed_up_at as date) as signup_date

    from users

)

select * from final
