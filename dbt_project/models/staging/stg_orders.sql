with

source as (

    select * from {{ source('shop', 'orders') }}

),

renamed as (

    select

        ---------- ids
        cast(order_id as bigint) as order_id,
        cast(user_id as bigint) as user_id,

        ---------- text
        lower(trim(status)) as status,

        ---------- timestamps
        cast(ordered_at as timestamp) as ordered_at

    from source

)

select * from renamed
